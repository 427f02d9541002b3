internal import CTorch
import Foundation

/// Process-wide libtorch settings: version, intra-op threads, seeds.
public enum Runtime {
    /// libtorch's version, e.g. "1.13.0".
    public static var libtorchVersion: String { String(cString: ct_version()) }

    /// Number of threads libtorch's CPU kernels use for one operation.
    ///
    /// Debian's libtorch starts with one thread per physical core as cpuinfo counts them,
    /// which on a 2-vCPU machine is 1. SegTTT sets it to every online core when the first
    /// tensor is made, unless `OMP_NUM_THREADS` is set; assign to change it.
    public static var numThreads: Int {
        get {
            configureOnce()
            return Int(ct_get_num_threads())
        }
        set {
            configureOnce()
            ct_set_num_threads(Int32(max(1, newValue)))
        }
    }

    /// Seeds libtorch's global generator (used when no `Generator` is given).
    public static func manualSeed(_ seed: UInt64) throws {
        try check(ct_manual_seed(seed))
    }

    /// Number of tensor handles alive in the process; returns to its start when nothing leaks.
    public static var liveTensorCount: Int { Int(ct_live_tensors()) }

    /// Number of generator handles alive in the process.
    public static var liveGeneratorCount: Int { Int(ct_live_generators()) }

    private static let defaultThreads: Void = {
        if ProcessInfo.processInfo.environment["OMP_NUM_THREADS"] == nil {
            ct_set_num_threads(Int32(ProcessInfo.processInfo.activeProcessorCount))
        }
    }()

    /// Applies the default thread count once per process.
    @inline(__always)
    static func configureOnce() {
        _ = defaultThreads
    }
}
