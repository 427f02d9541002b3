internal import CTorch
import Torch

/// SegTTT's own CPU kernels, and oneDNN's Winograd convolutions that libtorch never calls,
/// each behind one rule that says when it takes a call from the libtorch op it stands in for;
/// a call the rule does not admit goes to libtorch's op.
///
/// The `Torch` module is libtorch's alone; the layers of `TorchNN`, the TorchScript
/// convolution redirect and the adaptation methods call these entry points instead where a
/// kernel of SegTTT's was measured faster (docs/BENCHMARKS.md, "SegTTT's kernels", gives the
/// figures behind each rule). Every kernel runs on float32 CPU tensors only, computes first
/// derivatives only, and gives libtorch's values to rounding.
public enum Kernels {
    /// Number of threads that the kernels' parallel loops run on: libtorch's `numThreads`
    /// where they join libtorch's OpenMP team (`joinOpenMP`), and 1 otherwise.
    public static var threads: Int { Int(ct_parallel_loop_threads()) }

    /// Whether the kernels' loops join libtorch's OpenMP team: libtorch runs on GCC's OpenMP
    /// runtime (libgomp) and the process has its entry points. Where libtorch runs on another
    /// threading backend the kernels run on the calling thread.
    public static var joinOpenMP: Bool { ct_parallel_loops_join_openmp() }

    /// Runs `body` and returns the most threads that any of the kernels' parallel loops ran on
    /// meanwhile, in any thread of the process; 0 where none ran.
    public static func threadsUsed(by body: () throws -> Void) rethrows -> Int {
        ct_clear_parallel_loop_record()
        try body()
        return Int(ct_parallel_loop_record())
    }

    /// Whether every given tensor is a float32 CPU one, the only kind the kernels take.
    static func onCPUInFloat32(_ tensors: Tensor?...) -> Bool {
        tensors.allSatisfy { $0.map { $0.device == .cpu && $0.dtype == .float32 } ?? true }
    }
}
