// Per-operation overhead of the Swift layer against Python PyTorch on the same machine.
//
//     swift run -c release op-overhead            (this program)
//     /usr/bin/python3 Benchmarks/op_overhead.py   (the same measurements in PyTorch)
//
// Measures: a tiny op (adding two one-element tensors) repeated many times, which is pure
// dispatch overhead; a 3x3 convolution on [1, 64, 128, 256], which is pure kernel time;
// the convolution with one thread and with every core. Median of several repeats after
// warm-up. Prints one line per measurement: "name<TAB>microseconds".
import Foundation
import Torch

/// Median wall time of `body` in microseconds over `repeats` runs, after one warm-up run.
func median(repeats: Int, iterations: Int, _ body: () throws -> Void) rethrows -> Double {
    try body()
    var times: [Double] = []
    for _ in 0..<repeats {
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<iterations { try body() }
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e3 / Double(iterations))
    }
    return times.sorted()[times.count / 2]
}

func report(_ name: String, _ microseconds: Double) {
    print("\(name)\t\(String(format: "%.2f", microseconds))")
}

Runtime.configure(Runtime.Settings(flushDenormals: false))
let allCores = Runtime.numThreads
let a = try Tensor([1.0] as [Float])
let b = try Tensor([2.0] as [Float])
report("tiny_add_us", try median(repeats: 7, iterations: 20_000) { _ = try a + b })
try withNoGrad {
    let x = try Tensor.normal([1, 64, 128, 256], generator: Generator(seed: 0))
    let w = try Tensor.normal([64, 64, 3, 3], generator: Generator(seed: 1))
    for threads in [1, allCores] {
        Runtime.numThreads = threads
        report(
            "conv3x3_threads\(threads)_us",
            try median(repeats: 5, iterations: 3) { _ = try conv2d(x, weight: w, padding: 1) })
    }
}
print("threads_default\t\(allCores)")
