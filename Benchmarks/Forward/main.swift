// Forward time per frame (evaluation mode, no gradient) of the segmentation networks, for
// comparison with PyTorch on the same machine and thread count:
//
//     swift run -c release forward-bench [--threads N] [--repeats N]
//     /usr/bin/python3 Benchmarks/forward.py [--threads N] [--repeats N]
//
// ESPNet (p = 2, q = 8, 20 outputs) at 480x360 and DeepLabV2-ResNet-101 (19 classes) at
// 512x256 and 1024x512, seeded random weights and input. Median of `repeats` runs after one
// warm-up. Prints "name<TAB>milliseconds".
import Foundation
import SegTTT
import Torch

Runtime.configure(Runtime.Settings(flushDenormals: false))
var threads = Runtime.numThreads
var repeats = 5
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst(), let value = arguments.popFirst().flatMap(Int.init) {
    if flag == "--threads" { threads = value } else if flag == "--repeats" { repeats = value }
}
Runtime.numThreads = threads
print("threads\t\(Runtime.numThreads)")

/// Median milliseconds of `body` over `repeats` runs after one warm-up run.
func medianMilliseconds(_ body: () throws -> Void) rethrows -> Double {
    try body()
    var times: [Double] = []
    for _ in 0..<repeats {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    }
    return times.sorted()[times.count / 2]
}

func measure(_ name: String, _ model: any SegmentationModel, height: Int, width: Int) throws {
    model.eval()
    let input = try Tensor.normal([1, 3, height, width], generator: Generator(seed: 0))
    let ms = try withNoGrad { try medianMilliseconds { _ = try model.logits(input) } }
    print("\(name)\t\(String(format: "%.1f", ms))")
}

do {
    let generator = try Generator(seed: 0)
    try measure("espnet_480x360_ms", ESPNet(outputs: 20, p: 2, q: 8, generator: generator), height: 360, width: 480)
    let deeplab = try DeepLabV2(DeepLabV2.Configuration(), generator: generator)
    try measure("deeplabv2_r101_512x256_ms", deeplab, height: 256, width: 512)
    try measure("deeplabv2_r101_1024x512_ms", deeplab, height: 512, width: 1024)
} catch {
    FileHandle.standardError.write("forward-bench: \(error)\n".data(using: .utf8) ?? Data())
    exit(1)
}
