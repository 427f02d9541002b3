internal import CTorch

/// A seeded random-number generator (libtorch's CPU Philox/MT generator). The same seed
/// gives the same numbers as `torch.Generator().manual_seed(seed)` in PyTorch; random
/// tensors are drawn on the CPU, so they are also the same whatever the device.
public final class Generator {
    let handle: OpaquePointer

    public init(seed: UInt64) throws {
        var out: OpaquePointer?
        try check(ct_generator_new(seed, &out))
        guard let out else { throw TorchError("libtorch returned no generator") }
        handle = out
    }

    deinit {
        ct_generator_free(handle)
    }

    /// The full state (a uint8 tensor), to save and restore a random stream exactly.
    public func state() throws -> Tensor {
        try makeTensor { ct_generator_get_state(handle, $0) }
    }

    public func setState(_ state: Tensor) throws {
        try check(ct_generator_set_state(handle, state.handle))
    }
}

extension Tensor {
    /// Uniform samples on [low, high).
    public static func uniform(
        _ shape: [Int], low: Double = 0, high: Double = 1, dtype: DType = .float32, generator: Generator? = nil
    ) throws -> Tensor {
        let sizes = shape.map(Int64.init)
        return try withExtendedLifetime(generator) {
            try makeTensor {
                ct_rand_uniform(sizes, Int32(sizes.count), low, high, dtype.rawValue, generator?.handle, $0)
            }
        }
    }

    /// Normal samples with the given mean and standard deviation.
    public static func normal(
        _ shape: [Int], mean: Double = 0, std: Double = 1, dtype: DType = .float32, generator: Generator? = nil
    ) throws -> Tensor {
        let sizes = shape.map(Int64.init)
        return try withExtendedLifetime(generator) {
            try makeTensor {
                ct_rand_normal(sizes, Int32(sizes.count), mean, std, dtype.rawValue, generator?.handle, $0)
            }
        }
    }

    /// 0/1 samples, each 1 with probability `p`.
    public static func bernoulli(_ shape: [Int], p: Double, dtype: DType = .float32, generator: Generator? = nil) throws
        -> Tensor
    {
        let sizes = shape.map(Int64.init)
        return try withExtendedLifetime(generator) {
            try makeTensor { ct_bernoulli_scalar(sizes, Int32(sizes.count), p, dtype.rawValue, generator?.handle, $0) }
        }
    }

    /// 0/1 samples, each 1 with the probability held in self at its position.
    public func bernoulli(generator: Generator? = nil) throws -> Tensor {
        try withExtendedLifetime(generator) {
            try makeTensor { ct_bernoulli(handle, generator?.handle, $0) }
        }
    }
}
