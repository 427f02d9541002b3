internal import CTorch

/// An n-dimensional array owned by libtorch.
///
/// One `Tensor` owns one shim handle and frees it in `deinit`. Several `Tensor`s may view
/// the same storage (as PyTorch views do); in-place methods (`add_`, `copy_`, ...) change
/// the storage that all of them see. Every operation that libtorch can reject throws a
/// `TorchError` carrying libtorch's message.
public final class Tensor {
    /// The shim's handle (`ct_tensor`), for this package's modules over the shim.
    package let handle: OpaquePointer

    /// Takes ownership of a new shim handle.
    package init(handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        ct_tensor_free(handle)
    }

    // MARK: creation from Swift values

    /// A tensor of the given shape holding `values` in row-major order.
    public convenience init<T: TensorScalar>(_ values: [T], shape: [Int]) throws {
        let count = shape.reduce(1, *)
        guard count == values.count else {
            throw TorchError("shape \(shape) holds \(count) elements but \(values.count) values were given")
        }
        let handle = try values.withUnsafeBytes { raw in
            try Tensor.handle(copying: raw, shape: shape, strides: nil, dtype: T.dtype)
        }
        self.init(handle: handle)
    }

    /// A one-dimensional tensor holding `values`.
    public convenience init<T: TensorScalar>(_ values: [T]) throws {
        try self.init(values, shape: [values.count])
    }

    /// A zero-dimensional tensor holding one value.
    public convenience init<T: TensorScalar>(scalar value: T) throws {
        try self.init([value], shape: [])
    }

    /// A tensor made by copying raw bytes laid out as `shape` and `strides` (in elements;
    /// nil for row-major), e.g. a storage read from a checkpoint.
    public convenience init(bytes: UnsafeRawBufferPointer, shape: [Int], strides: [Int]? = nil, dtype: DType) throws {
        var elements = 1
        for size in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: size)
            guard size >= 0, !overflow else { throw TorchError("shape \(shape) is not a valid tensor size") }
            elements = product
        }
        let steps = strides ?? Tensor.rowMajorStrides(shape)
        guard steps.count == shape.count else {
            throw TorchError("strides \(steps) do not match shape \(shape)")
        }
        // The highest byte the view touches must lie inside the buffer.
        if !shape.contains(0) {
            // Computed with overflow checks: absurd sizes from a corrupt file must throw, not trap.
            var last = 0
            var overflow = false
            for (size, step) in zip(shape, steps) {
                let (span, o1) = (size - 1).multipliedReportingOverflow(by: step)
                let (sum, o2) = last.addingReportingOverflow(span)
                last = sum
                overflow = overflow || o1 || o2
            }
            let (needed, o3) = (last + 1).multipliedReportingOverflow(by: dtype.byteSize)
            guard !overflow, !o3, steps.allSatisfy({ $0 >= 0 }), needed <= bytes.count else {
                throw TorchError("a \(dtype) tensor of shape \(shape) needs more than the \(bytes.count) bytes given")
            }
        }
        self.init(handle: try Tensor.handle(copying: bytes, shape: shape, strides: strides, dtype: dtype))
    }

    private static func handle(copying raw: UnsafeRawBufferPointer, shape: [Int], strides: [Int]?, dtype: DType) throws
        -> OpaquePointer
    {
        let sizes = shape.map(Int64.init)
        let steps = strides?.map(Int64.init)
        var out: OpaquePointer?
        guard let base = raw.baseAddress else {
            // An empty buffer can only describe a tensor with no elements.
            let d = Device.cpu.code
            try check(ct_zeros(sizes, Int32(sizes.count), dtype.rawValue, d.type, d.index, &out))
            guard let out else { throw TorchError("libtorch returned no tensor") }
            return out
        }
        if let steps {
            try check(ct_tensor_from_data(base, sizes, steps, Int32(sizes.count), dtype.rawValue, &out))
        } else {
            try check(ct_tensor_from_data(base, sizes, nil, Int32(sizes.count), dtype.rawValue, &out))
        }
        guard let out else { throw TorchError("libtorch returned no tensor") }
        return out
    }

    static func rowMajorStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var step = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i] = step
            step *= shape[i]
        }
        return strides
    }

    // MARK: metadata

    /// Sizes of the dimensions, e.g. `[N, C, H, W]`.
    public var shape: [Int] {
        var sizes = [Int64](repeating: 0, count: 16)
        var ndim: Int32 = 0
        _ = ct_tensor_sizes(handle, &sizes, 16, &ndim)
        if ndim > 16 {
            sizes = [Int64](repeating: 0, count: Int(ndim))
            _ = ct_tensor_sizes(handle, &sizes, ndim, &ndim)
        }
        return sizes.prefix(Int(ndim)).map(Int.init)
    }

    /// Element strides of the dimensions.
    public var strides: [Int] {
        var steps = [Int64](repeating: 0, count: 16)
        var ndim: Int32 = 0
        _ = ct_tensor_strides(handle, &steps, 16, &ndim)
        if ndim > 16 {
            steps = [Int64](repeating: 0, count: Int(ndim))
            _ = ct_tensor_strides(handle, &steps, ndim, &ndim)
        }
        return steps.prefix(Int(ndim)).map(Int.init)
    }

    /// Number of dimensions.
    public var rank: Int {
        var ndim: Int32 = 0
        _ = ct_tensor_dim(handle, &ndim)
        return Int(ndim)
    }

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }

    public var dtype: DType {
        var code: Int32 = 0
        _ = ct_tensor_dtype(handle, &code)
        // Every tensor this library makes has one of the listed types.
        return DType(rawValue: code) ?? .float32
    }

    public var device: Device {
        var type: Int32 = 0
        var index: Int32 = 0
        _ = ct_tensor_device(handle, &type, &index)
        return type == Int32(CT_CUDA) ? .cuda(Int(index)) : .cpu
    }

    /// Whether the elements are laid out densely in `format`'s order.
    public func isContiguous(_ format: MemoryFormat = .contiguous) -> Bool {
        var result = false
        _ = ct_tensor_is_contiguous(handle, format.code, &result)
        return result
    }

    // MARK: back to Swift

    /// The elements in row-major order, converted to `T`'s dtype first when they differ.
    public func toArray<T: TensorScalar>(_ type: T.Type = T.self) throws -> [T] {
        let source = dtype == T.dtype ? self : try to(T.dtype)
        let n = count
        var result = [T]()
        result.reserveCapacity(n)
        try Swift.withUnsafeTemporaryAllocation(of: T.self, capacity: Swift.max(n, 1)) { buffer in
            try check(ct_tensor_copy_to(source.handle, buffer.baseAddress, n * MemoryLayout<T>.stride))
            result.append(contentsOf: buffer.prefix(n))
        }
        return result
    }

    /// The raw bytes of the elements in row-major order (little-endian, as in memory).
    public func contiguousBytes() throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count * dtype.byteSize)
        try bytes.withUnsafeMutableBytes { raw in
            try check(ct_tensor_copy_to(handle, raw.baseAddress, raw.count))
        }
        return bytes
    }

    /// The value of a one-element tensor.
    public func item() throws -> Double {
        var value = 0.0
        try check(ct_tensor_item_double(handle, &value))
        return value
    }

    /// The value of a one-element integer tensor.
    public func itemInt() throws -> Int {
        var value: Int64 = 0
        try check(ct_tensor_item_int64(handle, &value))
        return Int(value)
    }
}

extension Tensor: CustomStringConvertible {
    /// libtorch's printout of the values, dtype and shape.
    public var description: String {
        var text: UnsafeMutablePointer<CChar>?
        guard ct_tensor_description(handle, &text) == Int32(CT_OK), let text else {
            return "Tensor(shape: \(shape), dtype: \(dtype))"
        }
        defer { ct_string_free(text) }
        return String(cString: text)
    }
}

/// The order in which a 4-d tensor's elements are laid out in memory.
public enum MemoryFormat: Sendable {
    /// `[N, C, H, W]` row-major.
    case contiguous
    /// `[N, H, W, C]` in memory while indexed as `[N, C, H, W]` (often faster on CPU).
    case channelsLast

    var code: Int32 {
        switch self {
        case .contiguous: return Int32(CT_MEMORY_CONTIGUOUS)
        case .channelsLast: return Int32(CT_MEMORY_CHANNELS_LAST)
        }
    }
}
