import TransformerModel

extension ParameterLayout {
    /// One Float32 record per parameter, in layout (PyTorch state_dict) order, named
    /// `prefix + name`, pointing into `arena`, a buffer laid out by this layout (parameters, or an
    /// optimizer moment with prefixes such as "exp_avg."). The alignment padding is not written.
    package func float32Records(arena: UnsafePointer<Float>, prefix: String = "") -> [TensorRecord] {
        entries.map { TensorRecord(name: prefix + $0.name, shape: $0.shape, float32: arena + $0.offset) }
    }
}

extension SafetensorsFile {
    /// Fills `arena` (laid out by `layout`) with the tensors named `prefix + name`, converting F16
    /// to Float32. Every parameter must be present with its exact shape, and no tensor starting
    /// with `prefix` may be unknown to the layout (so a checkpoint of another model configuration
    /// is refused rather than half-loaded). The padding between tensors is left untouched.
    package func read(layout: ParameterLayout, into arena: UnsafeMutablePointer<Float>, prefix: String = "")
        throws(SafetensorsError)
    {
        for tensor in tensors where tensor.name.hasPrefix(prefix) {
            if layout[String(tensor.name.dropFirst(prefix.count))] == nil {
                throw SafetensorsError(path: path, problem: .unexpectedTensor(tensor.name))
            }
        }
        for entry in layout.entries {
            try copyFloats(named: prefix + entry.name, shape: entry.shape, into: arena + entry.offset)
        }
    }
}
