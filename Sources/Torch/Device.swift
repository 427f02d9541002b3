internal import CTorch

/// Where a tensor's memory lives.
public enum Device: Equatable, Hashable, Sendable, CustomStringConvertible {
    case cpu
    case cuda(Int)

    /// Whether this libtorch was built with CUDA and sees at least one GPU.
    public static var isCUDAAvailable: Bool { ct_cuda_is_available() }

    /// Number of CUDA devices visible (0 for a CPU-only libtorch).
    public static var cudaDeviceCount: Int { Int(ct_cuda_device_count()) }

    /// Parses "cpu", "cuda" or "cuda:N", N from 0 to 127 (libtorch keeps it in 8 bits).
    public init(parsing text: String) throws {
        if text == "cpu" {
            self = .cpu
        } else if text == "cuda" {
            self = .cuda(0)
        } else if text.hasPrefix("cuda:"), let index = Int(text.dropFirst(5)), (0...Int(Int8.max)).contains(index) {
            self = .cuda(index)
        } else {
            throw TorchError("unknown device '\(text)': use cpu, cuda or cuda:N with N from 0 to 127")
        }
    }

    /// Throws, naming the fix, unless tensors can live on this device here: always on the CPU;
    /// on cuda:N when this libtorch has CUDA and sees more than N GPUs.
    public func checkAvailable() throws {
        guard case .cuda(let index) = self else { return }
        let count = Device.cudaDeviceCount
        if count == 0 {
            throw TorchError(
                "\(self): this build's libtorch has no CUDA or sees no GPU; rebuild with LIBTORCH=<a CUDA libtorch> "
                    + "on a machine with a GPU, or use cpu")
        }
        if index >= count { throw TorchError("\(self): this machine has \(count) GPU(s), cuda:0 to cuda:\(count - 1)") }
    }

    /// Waits until every kernel queued on this device has finished: CUDA runs kernels
    /// asynchronously, so a timer is read only after this. Nothing to wait for on the CPU.
    public func synchronize() throws {
        guard case .cuda(let index) = self else { return }
        try check(ct_cuda_synchronize(Int32(index)))
    }

    var code: (type: Int32, index: Int32) {
        switch self {
        case .cpu: return (Int32(CT_CPU), 0)
        case .cuda(let i): return (Int32(CT_CUDA), Int32(i))
        }
    }

    public var description: String {
        switch self {
        case .cpu: return "cpu"
        case .cuda(let i): return "cuda:\(i)"
        }
    }
}
