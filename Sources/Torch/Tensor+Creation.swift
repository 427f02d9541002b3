internal import CTorch

extension Tensor {
    /// A tensor of zeros.
    public static func zeros(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        let sizes = shape.map(Int64.init)
        let d = device.code
        return try makeTensor { ct_zeros(sizes, Int32(sizes.count), dtype.rawValue, d.type, d.index, $0) }
    }

    /// A tensor of ones.
    public static func ones(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        let sizes = shape.map(Int64.init)
        let d = device.code
        return try makeTensor { ct_ones(sizes, Int32(sizes.count), dtype.rawValue, d.type, d.index, $0) }
    }

    /// A tensor filled with `value`.
    public static func full(_ shape: [Int], value: Double, dtype: DType = .float32, device: Device = .cpu) throws
        -> Tensor
    {
        let sizes = shape.map(Int64.init)
        let d = device.code
        return try makeTensor { ct_full(sizes, Int32(sizes.count), value, dtype.rawValue, d.type, d.index, $0) }
    }

    /// Values from `start` up to (not including) `end` in steps of `step`.
    public static func arange(
        _ start: Double = 0, _ end: Double, step: Double = 1, dtype: DType = .int64, device: Device = .cpu
    ) throws -> Tensor {
        let d = device.code
        return try makeTensor { ct_arange(start, end, step, dtype.rawValue, d.type, d.index, $0) }
    }

    /// Zeros of this tensor's shape, dtype and device.
    public func zerosLike() throws -> Tensor {
        try makeTensor { ct_zeros_like(handle, $0) }
    }

    // MARK: conversion

    /// A copy with elements of another dtype (self when it already has it).
    public func to(_ dtype: DType) throws -> Tensor {
        try to(dtype, device: device)
    }

    /// A copy on another device (self when already there).
    public func to(device: Device) throws -> Tensor {
        try to(dtype, device: device)
    }

    public func to(_ dtype: DType, device: Device) throws -> Tensor {
        let d = device.code
        return try makeTensor { ct_to(handle, dtype.rawValue, d.type, d.index, $0) }
    }

    /// A copy with its own storage (and its own place in the autograd graph).
    public func clone() throws -> Tensor {
        try makeTensor { ct_clone(handle, $0) }
    }

    /// Self, or a copy laid out densely in `format`.
    public func contiguous(_ format: MemoryFormat = .contiguous) throws -> Tensor {
        try makeTensor { ct_contiguous(handle, format.code, $0) }
    }
}
