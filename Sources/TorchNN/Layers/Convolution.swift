import SegTTTKernels
import Torch

/// 2-d convolution, `torch.nn.Conv2d`: weight [Cout, Cin / groups, kH, kW], optional bias [Cout];
/// computed by `Kernels.conv2d` (SegTTT's kernel where its rule admits the call).
public final class Conv2d: Module, UnaryModule {
    public let stride: Pair
    public let padding: Pair
    public let dilation: Pair
    public let groups: Int
    public let weight: Parameter
    public let bias: Parameter?

    /// Creates the layer with PyTorch's default initialisation.
    public init(
        _ inChannels: Int, _ outChannels: Int, kernelSize: Pair, stride: Pair = 1, padding: Pair = 0,
        dilation: Pair = 1, groups: Int = 1, bias: Bool = true, generator: Generator? = nil
    ) throws {
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        (weight, self.bias) = try convolutionParameters(
            "Conv2d", inChannels, outChannels, groups: groups, kernelSize: kernelSize, transposed: false, bias: bias,
            generator: generator)
        super.init()
        registerParameter("weight", weight)
        if let bias = self.bias { registerParameter("bias", bias) }
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        try Kernels.conv2d(
            input, weight: weight.value, bias: bias?.value, stride: stride, padding: padding, dilation: dilation,
            groups: groups)
    }
}

/// 2-d transposed convolution, `torch.nn.ConvTranspose2d`: weight [Cin, Cout / groups, kH, kW];
/// computed by `Kernels.convTranspose2d`.
public final class ConvTranspose2d: Module, UnaryModule {
    public let stride: Pair
    public let padding: Pair
    public let outputPadding: Pair
    public let dilation: Pair
    public let groups: Int
    public let weight: Parameter
    public let bias: Parameter?

    public init(
        _ inChannels: Int, _ outChannels: Int, kernelSize: Pair, stride: Pair = 1, padding: Pair = 0,
        outputPadding: Pair = 0, groups: Int = 1, bias: Bool = true, dilation: Pair = 1, generator: Generator? = nil
    ) throws {
        self.stride = stride
        self.padding = padding
        self.outputPadding = outputPadding
        self.dilation = dilation
        self.groups = groups
        (weight, self.bias) = try convolutionParameters(
            "ConvTranspose2d", inChannels, outChannels, groups: groups, kernelSize: kernelSize, transposed: true,
            bias: bias, generator: generator)
        super.init()
        registerParameter("weight", weight)
        if let bias = self.bias { registerParameter("bias", bias) }
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        try Kernels.convTranspose2d(
            input, weight: weight.value, bias: bias?.value, stride: stride, padding: padding,
            outputPadding: outputPadding, groups: groups, dilation: dilation)
    }
}

/// Weight (and bias) of a convolution with PyTorch's default initialisation: weight
/// [Cout, Cin / groups, kH, kW], or [Cin, Cout / groups, kH, kW] when `transposed`.
private func convolutionParameters(
    _ layer: String, _ inChannels: Int, _ outChannels: Int, groups: Int, kernelSize: Pair, transposed: Bool,
    bias: Bool, generator: Generator?
) throws -> (Parameter, Parameter?) {
    guard groups > 0, inChannels % groups == 0, outChannels % groups == 0 else {
        throw TorchError(
            "\(layer): \(inChannels) in and \(outChannels) out channels do not divide into \(groups) groups")
    }
    let shape =
        transposed
        ? [inChannels, outChannels / groups, kernelSize.height, kernelSize.width]
        : [outChannels, inChannels / groups, kernelSize.height, kernelSize.width]
    let weight = try Parameter(Initialization.defaultWeight(shape, generator: generator))
    let b = bias ? try Initialization.defaultBias(outChannels, weightShape: shape, generator: generator) : nil
    return (weight, try b.map { try Parameter($0) })
}
