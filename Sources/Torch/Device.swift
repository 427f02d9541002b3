internal import CTorch

/// Where a tensor's memory lives.
public enum Device: Equatable, Hashable, Sendable, CustomStringConvertible {
    case cpu
    case cuda(Int)

    /// Whether this libtorch was built with CUDA and sees at least one GPU.
    public static var isCUDAAvailable: Bool { ct_cuda_is_available() }

    /// Number of CUDA devices visible (0 for a CPU-only libtorch).
    public static var cudaDeviceCount: Int { Int(ct_cuda_device_count()) }

    /// Parses "cpu", "cuda" or "cuda:N".
    public init(parsing text: String) throws {
        if text == "cpu" {
            self = .cpu
        } else if text == "cuda" {
            self = .cuda(0)
        } else if text.hasPrefix("cuda:"), let index = Int(text.dropFirst(5)), index >= 0 {
            self = .cuda(index)
        } else {
            throw TorchError("unknown device '\(text)': use cpu, cuda or cuda:N")
        }
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
