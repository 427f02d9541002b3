// `segttt-bench --child convs[:TEXT] --threads N [--repeats R]` (TEXT: only the convolutions
// whose label or role holds it): SegTTT's convolution kernels against
// what they replace, at the shapes of ESPNet's step (both views in one batch): the 3x3 kernels
// (`Kernels.dilatedConv3x3`, `Kernels.stridedConv3x3`) and the 1x1 one (`Kernels.pointwiseConv`)
// against libtorch's convolution (oneDNN on CPU), also at a few shapes with multiples of 8
// channels; the 2x2 transposed one (`Kernels.convTranspose2x2`) against the path it replaced,
// oneDNN's 1x1 convolution to 4 O channels and SegTTT's block shuffle. SegTTT's side under each
// instruction set from AVX2 up. Forward alone and forward + backward (input and weight
// gradients), each the median of R runs, the two sides run in turn, so that the machine's drift
// hits both alike.
import Foundation
import SegTTTKernels
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
    ConvolutionShape(input: [2, 36, 180, 240], outputs: 20, dilation: 1, role: "decoder"),
    ConvolutionShape(input: [2, 32, 90, 120], outputs: 32, dilation: 1, role: "multiples of 8: libtorch's"),
    ConvolutionShape(input: [2, 64, 90, 120], outputs: 64, dilation: 2, role: "multiples of 8: libtorch's"),
    ConvolutionShape(input: [2, 128, 45, 60], outputs: 128, dilation: 2, role: "multiples of 8: libtorch's"),
]

/// ESPNet's 1x1 convolutions (input, output channels), and a few with multiples of 8 channels.
let pointwiseShapes: [(input: [Int], outputs: Int, role: String)] = [
    ([2, 128, 45, 60], 25, "ESP level 3/4 reduction"),
    ([2, 131, 90, 120], 20, "level 2 classifier"),
    ([2, 64, 90, 120], 12, "ESP level 2 reduction"),
    ([2, 256, 45, 60], 20, "level 3 classifier"),
    ([2, 40, 90, 120], 4, "ESP level 1 reduction"),
    ([2, 64, 90, 120], 32, "multiples of 8"),
    ([2, 128, 45, 60], 64, "multiples of 8"),
]

/// ESPNet's 3x3 convolutions with stride 2 (input, output channels), and one with multiples of 8.
let stridedShapes: [(input: [Int], outputs: Int, role: String)] = [
    ([2, 3, 360, 480], 16, "first layer"),
    ([2, 19, 180, 240], 12, "level 2 downsampling"),
    ([2, 131, 90, 120], 25, "level 3 downsampling"),
    ([2, 32, 90, 120], 32, "multiples of 8"),
]

/// DeepLabV2-ResNet-101's 3x3 convolutions at 512x256 (both views), one per stage, which
/// `Kernels.winogradConv3x3` takes where oneDNN has Winograd kernels.
let winogradShapes = [
    ConvolutionShape(input: [2, 64, 65, 129], outputs: 64, dilation: 1, role: "DeepLab layer1"),
    ConvolutionShape(input: [2, 128, 33, 65], outputs: 128, dilation: 1, role: "DeepLab layer2"),
    ConvolutionShape(input: [2, 256, 33, 65], outputs: 256, dilation: 2, role: "DeepLab layer3 (23 of them)"),
    ConvolutionShape(input: [2, 512, 33, 65], outputs: 512, dilation: 4, role: "DeepLab layer4"),
]

/// ESPNet's decoder's 2x2 stride-2 transposed convolutions, 20 channels to 20: their inputs.
let transposedShapes = [[2, 20, 45, 60], [2, 20, 90, 120], [2, 20, 180, 240]]

/// One comparison: SegTTT's kernel and what it replaces on the same leaves, and the
/// multiply-adds of one forward pass times 2.
struct KernelComparison {
    var label: String
    var role: String
    var flops: Double
    var ours: () throws -> Tensor
    var reference: () throws -> Tensor
    /// Whether SegTTT's side runs code of its own for each `Kernels.InstructionSet` (the
    /// Winograd kernels are oneDNN's, which picks its own).
    var perInstructionSet = true
}

/// SegTTT's stride-1 3x3 kernel `kernel` (input, weight, dilation) against libtorch's
/// convolution at `shape`, on leaves drawn from `seed` (weights scaled by `scale`).
func conv3x3Comparison(
    _ shape: ConvolutionShape, seed: UInt64, scale: Double, name: String = "", perInstructionSet: Bool = true,
    kernel: @escaping (Tensor, Tensor, Pair) throws -> Tensor
) throws -> KernelComparison {
    let generator = try Generator(seed: seed)
    let x = try Tensor.normal(shape.input, generator: generator).requiresGrad(true)
    let weight = try (Tensor.normal([shape.outputs, shape.input[1], 3, 3], generator: generator) * scale)
        .requiresGrad(true)
    let d = Pair(shape.dilation)
    let pixels = Double(shape.input.reduce(1, *) / shape.input[1])
    return KernelComparison(
        label: "\(shape.input) -> \(shape.outputs), d \(shape.dilation)\(name)", role: shape.role,
        flops: 2 * pixels * Double(shape.outputs * shape.input[1] * 9),
        ours: { try kernel(x, weight, d) },
        reference: { try conv2d(x, weight: weight, padding: d, dilation: d) }, perInstructionSet: perInstructionSet)
}

func kernelComparisons() throws -> [KernelComparison] {
    var comparisons: [KernelComparison] = []
    for (index, shape) in convolutionShapes.enumerated() {
        comparisons.append(
            try conv3x3Comparison(shape, seed: UInt64(index), scale: 0.2) {
                try Kernels.dilatedConv3x3($0, weight: $1, dilation: $2)
            })
    }
    if Kernels.winogradAvailable {
        for (index, shape) in winogradShapes.enumerated() {
            comparisons.append(
                try conv3x3Comparison(
                    shape, seed: UInt64(400 + index), scale: 0.05, name: ", Winograd", perInstructionSet: false
                ) { try Kernels.winogradConv3x3($0, weight: $1, dilation: $2) })
        }
    }
    for (index, shape) in pointwiseShapes.enumerated() {
        let generator = try Generator(seed: UInt64(200 + index))
        let x = try Tensor.normal(shape.input, generator: generator).requiresGrad(true)
        let weight = try (Tensor.normal([shape.outputs, shape.input[1], 1, 1], generator: generator) * 0.1)
            .requiresGrad(true)
        comparisons.append(
            KernelComparison(
                label: "\(shape.input) -> \(shape.outputs), 1x1", role: shape.role,
                flops: 2 * Double(shape.input.reduce(1, *)) * Double(shape.outputs),
                ours: { try Kernels.pointwiseConv(x, weight: weight) },
                reference: { try conv2d(x, weight: weight) }))
    }
    for (index, shape) in stridedShapes.enumerated() {
        let generator = try Generator(seed: UInt64(300 + index))
        let x = try Tensor.normal(shape.input, generator: generator).requiresGrad(true)
        let weight = try (Tensor.normal([shape.outputs, shape.input[1], 3, 3], generator: generator) * 0.1)
            .requiresGrad(true)
        let outputPixels = Double(shape.input[0] * ((shape.input[2] + 1) / 2) * ((shape.input[3] + 1) / 2))
        comparisons.append(
            KernelComparison(
                label: "\(shape.input) -> \(shape.outputs), 3x3 stride 2", role: shape.role,
                flops: 2 * outputPixels * Double(shape.outputs * shape.input[1] * 9),
                ours: { try Kernels.stridedConv3x3(x, weight: weight) },
                reference: { try conv2d(x, weight: weight, stride: 2, padding: 1) }))
    }
    for (index, shape) in transposedShapes.enumerated() {
        let generator = try Generator(seed: UInt64(100 + index))
        let (c, o) = (shape[1], shape[1])
        let x = try Tensor.normal(shape, generator: generator).requiresGrad(true)
        let weight = try (Tensor.normal([c, o, 2, 2], generator: generator) * 0.3).requiresGrad(true)
        comparisons.append(
            KernelComparison(
                label: "\(shape) -> \(o), 2x2 transposed", role: "decoder, against 1x1 + shuffle",
                flops: 2 * Double(shape.reduce(1, *) / c) * Double(c * o * 4),
                ours: { try Kernels.convTranspose2x2(x, weight: weight) },
                reference: {
                    let pointwise = try weight.reshape([c, o * 4]).transpose(0, 1).reshape([o * 4, c, 1, 1])
                    return try Kernels.blockShuffle(conv2d(x, weight: pointwise), height: 2, width: 2)
                }))
    }
    return comparisons
}

/// Times both sides of every comparison, SegTTT's under each instruction set the CPU runs
/// from AVX2 up (`Kernels.InstructionSet`, in turn with libtorch's), prints the table and
/// returns its rows.
func runConvolutionKernels(repeats: Int, matching filter: String?) throws -> [String: Any] {
    var rows: [[String]] = []
    var results: [[String: Any]] = []
    for comparison in try kernelComparisons()
    where filter.map({ comparison.label.contains($0) || comparison.role.contains($0) }) ?? true {
        guard comparison.perInstructionSet else {
            try compare(comparison, under: Kernels.instructionSet, repeats: repeats, rows: &rows, results: &results)
            continue
        }
        try Kernels.forEachInstructionSet(skippingBaseline: true) { set in
            try compare(comparison, under: set, repeats: repeats, rows: &rows, results: &results)
        }
    }
    print(
        TextTable(
            header: [
                "convolution", "in ESPNet's step", "kernels", "forward ms", "replaced", "ratio", "fwd+bwd ms",
                "replaced", "ratio", "GFLOP/s", "max |diff|",
            ], rows: rows
        ).terminal())
    return ["convolutions": results, "repeats": repeats]
}

/// Times SegTTT's side of `comparison` (under `set`) in turn with libtorch's, and adds a row.
private func compare(
    _ comparison: KernelComparison, under set: Kernels.InstructionSet, repeats: Int, rows: inout [[String]],
    results: inout [[String: Any]]
) throws {
    let sides = [comparison.ours, comparison.reference]
    var forward: [[Double]] = [[], []]
    var step: [[Double]] = [[], []]
    for round in 0...repeats {  // round 0 warms up
        for (k, side) in sides.enumerated() {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try withNoGrad { try side() }
            let middle = DispatchTime.now().uptimeNanoseconds
            try side().sum().backward()
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
    let difference = try (sides[0]() - sides[1]()).abs().amax().item()
    rows.append([
        comparison.label, comparison.role, set.rawValue, String(format: "%.2f", ours), String(format: "%.2f", theirs),
        String(format: "%.2f", ours / theirs), String(format: "%.2f", oursStep), String(format: "%.2f", theirsStep),
        String(format: "%.2f", oursStep / theirsStep),
        String(format: "%.0f", 3 * comparison.flops / oursStep / 1e6),
        String(format: "%.1e", difference),
    ])
    results.append([
        "label": comparison.label, "instruction_set": set.rawValue, "forward_ms": ours, "reference_forward_ms": theirs,
        "step_ms": oursStep,
        "reference_step_ms": theirsStep,
    ])
}
