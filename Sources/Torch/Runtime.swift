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

    /// Whether CPU arithmetic flushes denormal floats to zero (the x86 MXCSR modes
    /// flush-to-zero and denormals-are-zero), on the calling thread and every thread of
    /// libtorch's OpenMP team. Off by default, as in every process; `segttt` turns it on.
    ///
    /// A denormal (a float below 2^-126 in magnitude) costs some CPUs a microcode assist per
    /// operation; activations and gradients that decay towards zero produce many. Flushed,
    /// they become zero: results differ from IEEE arithmetic only below 2^-126, and a step can
    /// run several times faster (docs/BENCHMARKS.md). Setting it on a CPU other than x86 does
    /// nothing. Threads that libtorch starts later take the setting from the thread that
    /// starts them, so set it from the thread that runs the tensors.
    public static var flushesDenormals: Bool {
        get {
            configureOnce()
            return ct_flush_denormals()
        }
        set {
            configureOnce()
            _ = ct_set_flush_denormals(newValue)
        }
    }

    /// How many threads of the calling thread's OpenMP team (itself included) flush denormals.
    public static var threadsFlushingDenormals: Int {
        configureOnce()
        return Int(ct_threads_flushing_denormals())
    }

    /// Number of threads of OpenBLAS, the BLAS behind libtorch's CPU matrix products on
    /// Debian; nil where the process's BLAS is another one, or OpenBLAS built on OpenMP (whose
    /// thread count is OpenMP's, `numThreads`) or serially.
    ///
    /// libtorch's own kernels and oneDNN's convolutions run on OpenMP's threads, but the
    /// pthread build of OpenBLAS keeps a pool of its own, one thread per core, whose workers
    /// spin in `sched_yield` for a while after every product. On a step that alternates small
    /// products with convolutions, those workers take the cores from OpenMP's. SegTTT therefore
    /// sets OpenBLAS to one thread when the first tensor is made, unless
    /// `OPENBLAS_NUM_THREADS` is set; assign to change it.
    public static var blasThreads: Int? {
        get {
            configureOnce()
            let threads = ct_blas_threads()
            return threads < 0 ? nil : Int(threads)
        }
        set {
            configureOnce()
            if let newValue { _ = ct_set_blas_threads(Int32(max(1, newValue))) }
        }
    }

    /// Number of threads that SegTTT's own CPU kernels (the fused OCL loss, batch norm +
    /// PReLU, the 3x3 convolution, ...) run on: `numThreads` where they join libtorch's OpenMP
    /// team (`fusedKernelsJoinOpenMP`), and 1 otherwise.
    public static var fusedKernelThreads: Int {
        configureOnce()
        return Int(ct_parallel_loop_threads())
    }

    /// Whether SegTTT's own CPU kernels join libtorch's OpenMP team: libtorch runs on GCC's
    /// OpenMP runtime (libgomp) and the process has its entry points. Where libtorch runs on
    /// another threading backend the kernels run on the calling thread.
    public static var fusedKernelsJoinOpenMP: Bool { ct_parallel_loops_join_openmp() }

    /// Runs `body` and returns the most threads that any of SegTTT's own parallel loops (the
    /// fused kernels' passes) ran on meanwhile, in any thread of the process; 0 where none ran.
    public static func fusedKernelThreadsUsed(by body: () throws -> Void) rethrows -> Int {
        configureOnce()
        ct_clear_parallel_loop_record()
        try body()
        return Int(ct_parallel_loop_record())
    }

    /// Whether SegTTT has set glibc's allocator to keep freed memory for reuse (done when the
    /// first tensor is made, unless `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_` or a
    /// `glibc.malloc` tunable in `GLIBC_TUNABLES` is set).
    ///
    /// By default glibc serves blocks above a threshold (128 KiB at first, rising with the
    /// blocks freed, at most 32 MiB) with mappings of their own, unmapped on free, and returns
    /// the heap's top to the system once more than twice that threshold is free there. A
    /// test-time training step allocates and frees its activations and gradients anew at
    /// every frame, so every page of them was faulted in again at every step. With the
    /// threshold fixed at its 32 MiB ceiling and no trimming, `segttt-bench --child
    /// config:espnet_480x360 --threads 2 --repeats 5` takes 148 000-164 000 minor faults
    /// instead of 320 000-400 000 and 0.6 s of system time instead of 1.0-1.35 s, at the same
    /// peak resident memory, and its step 474 ms instead of 540 ms (medians of 6 runs each,
    /// in turn, 2026-11-23); blocks above 32 MiB still get mappings of their own. The price: the
    /// process's resident memory stays near its peak between frames instead of falling back.
    public static var keepsFreedMemory: Bool { defaultsKeptFreedMemory }

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

    /// Applies the process-wide defaults once; true where glibc was set to keep freed memory.
    private static let defaultsKeptFreedMemory: Bool = {
        let environment = ProcessInfo.processInfo.environment
        let mallocTuned =
            environment["MALLOC_MMAP_THRESHOLD_"] != nil || environment["MALLOC_TRIM_THRESHOLD_"] != nil
            || (environment["GLIBC_TUNABLES"] ?? "").contains("glibc.malloc.")
        let keptFreedMemory = !mallocTuned && ct_keep_freed_memory()
        if environment["OMP_NUM_THREADS"] == nil {
            ct_set_num_threads(Int32(ProcessInfo.processInfo.activeProcessorCount))
        }
        if environment["OPENBLAS_NUM_THREADS"] == nil {
            _ = ct_set_blas_threads(1)
        }
        return keptFreedMemory
    }()

    /// Applies the default thread counts and allocator settings once per process.
    @inline(__always)
    static func configureOnce() {
        _ = defaultsKeptFreedMemory
    }
}
