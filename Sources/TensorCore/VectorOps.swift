import CKernels

/// Elementwise loops over flat buffers that are not matrix products.
package enum VectorOps {
    /// Sum of squares in Float64 (used for the global gradient norm, so the order of a long sum does
    /// not lose precision).
    package static func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Double {
        var acc0 = 0.0, acc1 = 0.0, acc2 = 0.0, acc3 = 0.0
        var i = 0
        while i + 4 <= count {
            let a = Double(x[i]), b = Double(x[i + 1]), c = Double(x[i + 2]), d = Double(x[i + 3])
            acc0 += a * a
            acc1 += b * b
            acc2 += c * c
            acc3 += d * d
            i += 4
        }
        while i < count {
            let a = Double(x[i])
            acc0 += a * a
            i += 1
        }
        return (acc0 + acc1) + (acc2 + acc3)
    }

    /// True when every value is finite.
    package static func allFinite(_ x: UnsafePointer<Float>, count: Int) -> Bool {
        var bad = false
        for i in 0..<count where !x[i].isFinite {
            bad = true
            break
        }
        return !bad
    }

    /// y += x
    @inline(__always)
    package static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] += x[i] }
    }

    /// x = max(x, 0) in place, NaN kept (as torch.relu). A C loop: Swift's branchy version did not
    /// vectorize and mispredicted on half the elements.
    package static func relu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        ckernels_relu(x, count)
    }

    /// dh = h > 0 ? dh * scale : 0, with h the output of ReLU (and of dropout after it, whose zeros
    /// then block the gradient too, so `scale` is dropout's keep scale or 1).
    package static func reluBackward(
        _ dh: UnsafeMutablePointer<Float>, output h: UnsafePointer<Float>,
        count: Int, scale: Float
    ) {
        ckernels_relu_backward(dh, h, count, scale)
    }
}
