internal import CTorch
import Foundation

/// Process-wide libtorch settings: version, threads, denormals, the allocator, seeds.
///
/// A process computes under libtorch's and the C library's defaults until it calls
/// `configure`, which SegTTT's tool and benchmarks call before their first tensor.
public enum Runtime {
    /// libtorch's version, e.g. "1.13.0".
    public static var libtorchVersion: String { String(cString: ct_version()) }

    /// The process-wide settings `configure` applies.
    public struct Settings: Sendable, Equatable {
        /// libtorch's intra-op threads; nil for `OMP_NUM_THREADS` where it is set and every
        /// online core otherwise (Debian's libtorch starts with one thread per physical core
        /// as cpuinfo counts them, which on a 2-vCPU machine is 1).
        public var threads: Int?
        /// Whether CPU arithmetic flushes denormal floats to zero (`flushesDenormals`).
        public var flushDenormals: Bool
        /// Whether glibc's allocator keeps freed memory for reuse (`keepsFreedMemory`); not
        /// applied where `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_` or a
        /// `glibc.malloc` tunable in `GLIBC_TUNABLES` is set.
        public var keepFreedMemory: Bool
        /// OpenBLAS's threads (`blasThreads`); nil for `OPENBLAS_NUM_THREADS` where it is set
        /// and 1 otherwise.
        public var blasThreads: Int?

        public init(threads: Int? = nil, flushDenormals: Bool = true, keepFreedMemory: Bool = true, blasThreads: Int? = nil) {
            self.threads = threads
            self.flushDenormals = flushDenormals
            self.keepFreedMemory = keepFreedMemory
            self.blasThreads = blasThreads
        }
    }

    /// Applies `settings` to the process: libtorch's threads, OpenBLAS's, the denormal mode of
    /// the calling thread and of libtorch's OpenMP team, and glibc's allocator. Call it from
    /// the thread that runs the tensors, before the first; calling it again applies the new
    /// settings (the allocator's, once applied, stay).
    public static func configure(_ settings: Settings = Settings()) {
        let environment = ProcessInfo.processInfo.environment
        if let threads = settings.threads {
            numThreads = threads
        } else if environment["OMP_NUM_THREADS"] == nil {
            numThreads = ProcessInfo.processInfo.activeProcessorCount
        }
        if let threads = settings.blasThreads {
            blasThreads = threads
        } else if environment["OPENBLAS_NUM_THREADS"] == nil {
            _ = ct_set_blas_threads(1)
        }
        flushesDenormals = settings.flushDenormals
        let mallocTuned =
            environment["MALLOC_MMAP_THRESHOLD_"] != nil || environment["MALLOC_TRIM_THRESHOLD_"] != nil
            || (environment["GLIBC_TUNABLES"] ?? "").contains("glibc.malloc.")
        if settings.keepFreedMemory, !mallocTuned, !keptFreedMemory {
            keptFreedMemory = ct_keep_freed_memory()
        }
    }

    /// Number of threads libtorch's CPU kernels use for one operation; assign to change it.
    public static var numThreads: Int {
        get { Int(ct_get_num_threads()) }
        set { ct_set_num_threads(Int32(max(1, newValue))) }
    }

    /// Whether CPU arithmetic flushes denormal floats to zero (the x86 MXCSR modes
    /// flush-to-zero and denormals-are-zero), on the calling thread and every thread of
    /// libtorch's OpenMP team. Off in a new process; `configure` turns it on by default.
    ///
    /// A denormal (a float below 2^-126 in magnitude) costs some CPUs a microcode assist per
    /// operation; activations and gradients that decay towards zero produce many. Flushed,
    /// they become zero: results differ from IEEE arithmetic only below 2^-126, and a step can
    /// run several times faster (docs/BENCHMARKS.md). Setting it on a CPU other than x86 does
    /// nothing. Threads that libtorch starts later take the setting from the thread that
    /// starts them, so set it from the thread that runs the tensors.
    public static var flushesDenormals: Bool {
        get { ct_flush_denormals() }
        set { _ = ct_set_flush_denormals(newValue) }
    }

    /// How many threads of the calling thread's OpenMP team (itself included) flush denormals.
    public static var threadsFlushingDenormals: Int { Int(ct_threads_flushing_denormals()) }

    /// Number of threads of OpenBLAS, the BLAS behind libtorch's CPU matrix products on
    /// Debian; nil where the process's BLAS is another one, or OpenBLAS built on OpenMP (whose
    /// thread count is OpenMP's, `numThreads`) or serially.
    ///
    /// libtorch's own kernels and oneDNN's convolutions run on OpenMP's threads, but the
    /// pthread build of OpenBLAS keeps a pool of its own, one thread per core, whose workers
    /// spin in `sched_yield` for a while after every product. On a step that alternates small
    /// products with convolutions, those workers take the cores from OpenMP's, so `configure`
    /// sets OpenBLAS to one thread by default; assign to change it.
    public static var blasThreads: Int? {
        get {
            let threads = ct_blas_threads()
            return threads < 0 ? nil : Int(threads)
        }
        set {
            if let newValue { _ = ct_set_blas_threads(Int32(max(1, newValue))) }
        }
    }

    /// Whether `configure` has set glibc's allocator to keep freed memory for reuse.
    ///
    /// By default glibc serves blocks above a threshold (128 KiB at first, rising with the
    /// blocks freed, at most 32 MiB) with mappings of their own, unmapped on free, and returns
    /// the heap's top to the system once more than twice that threshold is free there. A
    /// test-time training step allocates and frees its activations and gradients anew at
    /// every frame, so every page of them would be faulted in again at every step. Kept, the
    /// threshold is fixed at its 32 MiB ceiling with no trimming: far fewer page faults and a
    /// faster step at the same peak resident memory (docs/BENCHMARKS.md, "What made the Swift
    /// step faster"); the price is that the process's resident memory stays near its peak
    /// between frames.
    public static var keepsFreedMemory: Bool { keptFreedMemory }

    /// The bytes glibc's allocator holds in its main heap and in blocks mapped on their own,
    /// freed blocks included; nil where the C library is not glibc.
    public static var allocatorBytes: (heap: Int, mapped: Int)? {
        var heap: Int64 = 0
        var mapped: Int64 = 0
        return ct_allocator_bytes(&heap, &mapped) ? (Int(heap), Int(mapped)) : nil
    }

    /// Seeds libtorch's global generator (used when no `Generator` is given).
    public static func manualSeed(_ seed: UInt64) throws {
        try check(ct_manual_seed(seed))
    }

    /// Number of tensor handles alive in the process; returns to its start when nothing leaks.
    public static var liveTensorCount: Int { Int(ct_live_tensors()) }

    /// Number of generator handles alive in the process.
    public static var liveGeneratorCount: Int { Int(ct_live_generators()) }

    /// Whether glibc has been set to keep freed memory (it stays set for the process); written
    /// only by `configure`, on the thread that runs the tensors.
    nonisolated(unsafe) private static var keptFreedMemory = false
}
