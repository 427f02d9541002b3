internal import CTorch

/// Elementwise arithmetic and comparisons with broadcasting, named as in PyTorch.
extension Tensor {
    func binary(_ op: Int32, _ other: Tensor) throws -> Tensor {
        try makeTensor { ct_binary(op, handle, other.handle, $0) }
    }

    func binary(_ op: Int32, _ scalar: Double) throws -> Tensor {
        try makeTensor { ct_binary_scalar(op, handle, scalar, $0) }
    }

    func unary(_ op: Int32) throws -> Tensor {
        try makeTensor { ct_unary(op, handle, $0) }
    }

    public static func + (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(Int32(CT_ADD), b) }
    public static func - (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(Int32(CT_SUB), b) }
    public static func * (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(Int32(CT_MUL), b) }
    public static func / (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(Int32(CT_DIV), b) }
    public static func + (a: Tensor, s: Double) throws -> Tensor { try a.binary(Int32(CT_ADD), s) }
    public static func - (a: Tensor, s: Double) throws -> Tensor { try a.binary(Int32(CT_SUB), s) }
    public static func * (a: Tensor, s: Double) throws -> Tensor { try a.binary(Int32(CT_MUL), s) }
    public static func / (a: Tensor, s: Double) throws -> Tensor { try a.binary(Int32(CT_DIV), s) }
    public static func + (s: Double, a: Tensor) throws -> Tensor { try a.binary(Int32(CT_ADD), s) }
    public static func * (s: Double, a: Tensor) throws -> Tensor { try a.binary(Int32(CT_MUL), s) }
    public static func - (s: Double, a: Tensor) throws -> Tensor {
        try makeTensor { ct_scalar_binary(Int32(CT_SUB), s, a.handle, $0) }
    }
    public static func / (s: Double, a: Tensor) throws -> Tensor {
        try makeTensor { ct_scalar_binary(Int32(CT_DIV), s, a.handle, $0) }
    }
    public static prefix func - (a: Tensor) throws -> Tensor { try a.unary(Int32(CT_NEG)) }

    /// self ** exponent
    public func pow(_ exponent: Double) throws -> Tensor { try binary(Int32(CT_POW), exponent) }
    /// self ** exponent, elementwise
    public func pow(_ exponent: Tensor) throws -> Tensor { try binary(Int32(CT_POW), exponent) }

    public func eq(_ other: Tensor) throws -> Tensor { try binary(Int32(CT_EQ), other) }
    public func ne(_ other: Tensor) throws -> Tensor { try binary(Int32(CT_NE), other) }
    public func lt(_ other: Tensor) throws -> Tensor { try binary(Int32(CT_LT), other) }
    public func le(_ other: Tensor) throws -> Tensor { try binary(Int32(CT_LE), other) }
    public func gt(_ other: Tensor) throws -> Tensor { try binary(Int32(CT_GT), other) }
    public func ge(_ other: Tensor) throws -> Tensor { try binary(Int32(CT_GE), other) }
    public func eq(_ s: Double) throws -> Tensor { try binary(Int32(CT_EQ), s) }
    public func ne(_ s: Double) throws -> Tensor { try binary(Int32(CT_NE), s) }
    public func lt(_ s: Double) throws -> Tensor { try binary(Int32(CT_LT), s) }
    public func le(_ s: Double) throws -> Tensor { try binary(Int32(CT_LE), s) }
    public func gt(_ s: Double) throws -> Tensor { try binary(Int32(CT_GT), s) }
    public func ge(_ s: Double) throws -> Tensor { try binary(Int32(CT_GE), s) }

    public func maximum(_ other: Tensor) throws -> Tensor { try binary(Int32(CT_MAXIMUM), other) }
    public func minimum(_ other: Tensor) throws -> Tensor { try binary(Int32(CT_MINIMUM), other) }
    public func logicalAnd(_ other: Tensor) throws -> Tensor { try binary(Int32(CT_LOGICAL_AND), other) }
    public func logicalOr(_ other: Tensor) throws -> Tensor { try binary(Int32(CT_LOGICAL_OR), other) }
    public func logicalNot() throws -> Tensor { try unary(Int32(CT_LOGICAL_NOT)) }

    public func exp() throws -> Tensor { try unary(Int32(CT_EXP)) }
    public func log() throws -> Tensor { try unary(Int32(CT_LOG)) }
    public func sqrt() throws -> Tensor { try unary(Int32(CT_SQRT)) }
    public func rsqrt() throws -> Tensor { try unary(Int32(CT_RSQRT)) }
    public func abs() throws -> Tensor { try unary(Int32(CT_ABS)) }
    public func relu() throws -> Tensor { try unary(Int32(CT_RELU)) }
    public func sigmoid() throws -> Tensor { try unary(Int32(CT_SIGMOID)) }
    public func tanh() throws -> Tensor { try unary(Int32(CT_TANH)) }
    public func floor() throws -> Tensor { try unary(Int32(CT_FLOOR)) }
    /// True where the element is neither infinite nor NaN.
    public func isFinite() throws -> Tensor { try unary(Int32(CT_ISFINITE)) }

    /// Elements of `a` where `condition` is true, else of `b`.
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        try makeTensor { ct_where(condition.handle, a.handle, b.handle, $0) }
    }

    /// Elements limited to [min, max]; a nil bound is open.
    public func clamp(min: Double? = nil, max: Double? = nil) throws -> Tensor {
        try makeTensor { ct_clamp(handle, min != nil, min ?? 0, max != nil, max ?? 0, $0) }
    }

    /// Matrix product with PyTorch's broadcasting rules.
    public func matmul(_ other: Tensor) throws -> Tensor {
        try makeTensor { ct_matmul(handle, other.handle, $0) }
    }
}

/// Reductions over dimensions (all dimensions when `dims` is empty).
extension Tensor {
    func reduce(_ op: Int32, _ dims: [Int], _ keepDim: Bool) throws -> Tensor {
        let d = dims.map(Int64.init)
        return try makeTensor { ct_reduce(op, handle, d, Int32(d.count), keepDim, $0) }
    }

    public func sum(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor {
        try reduce(Int32(CT_SUM), dims, keepDim)
    }

    public func mean(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor {
        try reduce(Int32(CT_MEAN), dims, keepDim)
    }

    /// Largest value over `dims` (all when empty).
    public func amax(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor {
        try reduce(Int32(CT_AMAX), dims, keepDim)
    }

    /// Smallest value over `dims` (all when empty).
    public func amin(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor {
        try reduce(Int32(CT_AMIN), dims, keepDim)
    }

    /// Variance over `dims`; unbiased divides by n - 1, else by n.
    public func `var`(dims: [Int] = [], unbiased: Bool = true, keepDim: Bool = false) throws -> Tensor {
        let d = dims.map(Int64.init)
        return try makeTensor { ct_var(handle, d, Int32(d.count), unbiased, keepDim, $0) }
    }

    /// Variance and mean over `dims` in one pass over the data (`torch.var_mean`).
    public func varMean(dims: [Int], unbiased: Bool = true, keepDim: Bool = false) throws -> (
        variance: Tensor, mean: Tensor
    ) {
        let d = dims.map(Int64.init)
        var variance: OpaquePointer?
        var mean: OpaquePointer?
        try check(ct_var_mean(handle, d, Int32(d.count), unbiased, keepDim, &variance, &mean))
        guard let variance, let mean else { throw TorchError("libtorch returned no tensor") }
        return (Tensor(handle: variance), Tensor(handle: mean))
    }

    /// Index of the largest value along `dim` (int64).
    public func argmax(dim: Int, keepDim: Bool = false) throws -> Tensor {
        try makeTensor { ct_argmax(handle, Int64(dim), keepDim, $0) }
    }

    /// Largest values along `dim` and their indices.
    public func max(dim: Int, keepDim: Bool = false) throws -> (values: Tensor, indices: Tensor) {
        var values: OpaquePointer?
        var indices: OpaquePointer?
        try check(ct_max_dim(handle, Int64(dim), keepDim, &values, &indices))
        guard let values, let indices else { throw TorchError("libtorch returned no tensor") }
        return (Tensor(handle: values), Tensor(handle: indices))
    }

    /// The p-norm over `dims` (all when empty).
    public func norm(p: Double = 2, dims: [Int] = [], keepDim: Bool = false) throws -> Tensor {
        let d = dims.map(Int64.init)
        return try makeTensor { ct_norm(handle, p, d, Int32(d.count), keepDim, $0) }
    }

    /// Occurrences of each value 0..<max(minLength, max + 1) in a 1-d non-negative int tensor.
    public func bincount(minLength: Int = 0) throws -> Tensor {
        try makeTensor { ct_bincount(handle, Int64(minLength), $0) }
    }
}
