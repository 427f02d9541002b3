// `segttt-bench --child convs --threads N [--repeats R]`: SegTTT's 3x3 convolution kernel
// (`dilatedConv3x3`) against libtorch's (`libtorchConv2d`, oneDNN on CPU) at the shapes of
// ESPNet's step, both views in one batch, and at a few shapes with multiples of 8 channels,
// where `conv2d` keeps libtorch's. Forward alone and forward + backward (input and weight
// gradients), each the median of R runs, the two kernels run in turn, so that the machine's
// drift hits both alike.
import Foundation
import SegTTTReports
import Torch

/// A stride-1 3x3 convolution with padding = dilation: input [N, C, H, W] to `outputs` channels.
struct ConvolutionShape {
    var input: [Int]
    var outputs: Int
    var dilation: Int
    /// Where it occurs: the ESPNet step's layer, or why it is listed.
    var role: String
}

let convolutionShapes = [
    ConvolutionShape(input: [2, 25, 45, 60], outputs: 25, dilation: 2, role: "ESP level 3/4 branch"),
    ConvolutionShape(input: [2, 25, 45, 60], outputs: 25, dilation: 16, role: "ESP level 3/4 branch"),
    ConvolutionShape(input: [2, 25, 45, 60], outputs: 28, dilation: 1, role: "ESP level 3/4 first branch"),
    ConvolutionShape(input: [2, 12, 90, 120], outputs: 12, dilation: 4, role: "ESP level 2 branch"),
    ConvolutionShape(input: [2, 12, 90, 120], outputs: 16, dilation: 1, role: "ESP level 2 first branch"),
    ConvolutionShape(input: [2, 4, 90, 120], outputs: 4, dilation: 2, role: "ESP level 1 branch"),
    ConvolutionShape(input: [2, 19, 180, 240], outputs: 12, dilation: 1, role: "decoder"),
    ConvolutionShape(input: [2, 36, 180, 240], outputs: 20, dilation: 1, role: "decoder, libtorch's (36)"),
    ConvolutionShape(input: [2, 32, 90, 120], outputs: 32, dilation: 1, role: "multiples of 8: libtorch's"),
    ConvolutionShape(input: [2, 64, 90, 120], outputs: 64, dilation: 2, role: "multiples of 8: libtorch's"),
    ConvolutionShape(input: [2, 128, 45, 60], outputs: 128, dilation: 2, role: "multiples of 8: libtorch's"),
]

/// Times both kernels at every shape of `convolutionShapes`, prints the table and returns its
/// rows.
func runConvolutionKernels(repeats: Int) throws -> [String: Any] {
    var rows: [[String]] = []
    var results: [[String: Any]] = []
    for (index, shape) in convolutionShapes.enumerated() {
        let generator = try Generator(seed: UInt64(index))
        let x = try Tensor.normal(shape.input, generator: generator).requiresGrad(true)
        let weight = try (Tensor.normal([shape.outputs, shape.input[1], 3, 3], generator: generator) * 0.2)
            .requiresGrad(true)
        let d = Pair(shape.dilation)
        let kernels: [() throws -> Tensor] = [
            { try dilatedConv3x3(x, weight: weight, dilation: d) },
            { try libtorchConv2d(x, weight: weight, padding: d, dilation: d) },
        ]
        var forward: [[Double]] = [[], []]
        var step: [[Double]] = [[], []]
        for round in 0...repeats {  // round 0 warms up
            for (k, kernel) in kernels.enumerated() {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try withNoGrad { try kernel() }
                let middle = DispatchTime.now().uptimeNanoseconds
                try kernel().sum().backward()
                let end = DispatchTime.now().uptimeNanoseconds
                if round > 0 {
                    forward[k].append(Double(middle - start) / 1e6)
                    step[k].append(Double(end - middle) / 1e6)
                }
            }
        }
        let median = { (times: [Double]) in times.sorted()[times.count / 2] }
        let (ours, theirs) = (median(forward[0]), median(forward[1]))
        let (oursStep, theirsStep) = (median(step[0]), median(step[1]))
        let difference = try (kernels[0]() - kernels[1]()).abs().amax().item()
        let flops = 2.0 * Double(shape.input.reduce(1, *) / shape.input[1]) * Double(shape.outputs * shape.input[1] * 9)
        rows.append([
            "\(shape.input) -> \(shape.outputs), d \(shape.dilation)", shape.role,
            String(format: "%.2f", ours), String(format: "%.2f", theirs), String(format: "%.2f", ours / theirs),
            String(format: "%.2f", oursStep), String(format: "%.2f", theirsStep),
            String(format: "%.2f", oursStep / theirsStep), String(format: "%.0f", 3 * flops / oursStep / 1e6),
            String(format: "%.1e", difference),
        ])
        results.append([
            "input": shape.input, "outputs": shape.outputs, "dilation": shape.dilation, "forward_ms": ours,
            "libtorch_forward_ms": theirs, "step_ms": oursStep, "libtorch_step_ms": theirsStep,
        ])
    }
    print(
        TextTable(
            header: [
                "convolution", "in ESPNet's step", "forward ms", "libtorch", "ratio", "fwd+bwd ms", "libtorch",
                "ratio", "GFLOP/s", "max |diff|",
            ], rows: rows
        ).terminal())
    return ["convolutions": results, "repeats": repeats]
}
