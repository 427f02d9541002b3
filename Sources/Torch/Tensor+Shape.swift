internal import CTorch

/// Views and rearrangements, named as in PyTorch.
extension Tensor {
    /// The same elements in another shape; one size may be -1 (inferred).
    public func reshape(_ shape: [Int]) throws -> Tensor {
        let sizes = shape.map(Int64.init)
        return try makeTensor { ct_reshape(handle, sizes, Int32(sizes.count), $0) }
    }

    /// Dimensions reordered: result dimension i is input dimension `dims[i]`.
    public func permute(_ dims: [Int]) throws -> Tensor {
        let d = dims.map(Int64.init)
        return try makeTensor { ct_permute(handle, d, Int32(d.count), $0) }
    }

    public func transpose(_ dim0: Int, _ dim1: Int) throws -> Tensor {
        try makeTensor { ct_transpose(handle, Int64(dim0), Int64(dim1), $0) }
    }

    /// A broadcast view with sizes `shape` (-1 keeps a size).
    public func expand(_ shape: [Int]) throws -> Tensor {
        let sizes = shape.map(Int64.init)
        return try makeTensor { ct_expand(handle, sizes, Int32(sizes.count), $0) }
    }

    public func squeeze(dim: Int) throws -> Tensor {
        try makeTensor { ct_squeeze(handle, Int64(dim), $0) }
    }

    public func unsqueeze(dim: Int) throws -> Tensor {
        try makeTensor { ct_unsqueeze(handle, Int64(dim), $0) }
    }

    /// Reverses the order of elements along `dims` (a copy).
    public func flip(_ dims: [Int]) throws -> Tensor {
        let d = dims.map(Int64.init)
        return try makeTensor { ct_flip(handle, d, Int32(d.count), $0) }
    }

    /// A view of `length` elements along `dim` from `start`.
    public func narrow(dim: Int, start: Int, length: Int) throws -> Tensor {
        try makeTensor { ct_narrow(handle, Int64(dim), Int64(start), Int64(length), $0) }
    }

    /// A view of `start..<end` by `step` along `dim`, as `x[..., start:end:step]`.
    public func slice(dim: Int, start: Int = 0, end: Int = Int.max, step: Int = 1) throws -> Tensor {
        try makeTensor { ct_slice(handle, Int64(dim), Int64(start), Int64(end), Int64(step), $0) }
    }

    /// The entries at int64 `index` along `dim` (a copy).
    public func indexSelect(dim: Int, index: Tensor) throws -> Tensor {
        try makeTensor { ct_index_select(handle, Int64(dim), index.handle, $0) }
    }

    /// Joins tensors along an existing dimension.
    public static func cat(_ tensors: [Tensor], dim: Int = 0) throws -> Tensor {
        let handles: [OpaquePointer?] = tensors.map { $0.handle }
        return try withExtendedLifetime(tensors) {
            try makeTensor { ct_cat(handles, Int32(handles.count), Int64(dim), $0) }
        }
    }

    /// The views of this tensor along `dim`, one per index, that dimension removed; their
    /// gradients are stacked back in one copy (where `narrow`s each scatter into a zero
    /// tensor of the full size).
    public func unbind(dim: Int = 0) throws -> [Tensor] {
        let shape = self.shape
        let axis = dim < 0 ? dim + shape.count : dim
        // An out-of-range `dim` gets libtorch's own error.
        let size = shape.indices.contains(axis) ? shape[axis] : 0
        var handles = [OpaquePointer?](repeating: nil, count: size)
        var count: Int32 = 0
        try check(ct_unbind(handle, Int64(dim), &handles, Int32(size), &count))
        return try handles.prefix(Int(count)).map { handle in
            guard let handle else { throw TorchError("libtorch returned no tensor") }
            return Tensor(handle: handle)
        }
    }

    /// Joins tensors along a new dimension.
    public static func stack(_ tensors: [Tensor], dim: Int = 0) throws -> Tensor {
        let handles: [OpaquePointer?] = tensors.map { $0.handle }
        return try withExtendedLifetime(tensors) {
            try makeTensor { ct_stack(handles, Int32(handles.count), Int64(dim), $0) }
        }
    }
}
