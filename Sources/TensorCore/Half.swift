import CHalf

/// Float32 <-> Float16 conversions over whole buffers, using the CPU's F16C instructions.
package enum Half {
    package static func encode(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
        chalf_f32_to_f16(src, dst, count)
    }

    package static func decode(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        chalf_f16_to_f32(src, dst, count)
    }
}
