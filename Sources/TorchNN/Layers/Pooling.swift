import Torch

/// Max pooling, `torch.nn.MaxPool2d`; `stride` defaults to the kernel size.
public final class MaxPool2d: Module, UnaryModule {
    public let kernelSize: Pair
    public let stride: Pair
    public let padding: Pair
    public let dilation: Pair
    public let ceilMode: Bool

    public init(kernelSize: Pair, stride: Pair? = nil, padding: Pair = 0, dilation: Pair = 1, ceilMode: Bool = false) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
        self.dilation = dilation
        self.ceilMode = ceilMode
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        try maxPool2d(
            input, kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation, ceilMode: ceilMode)
    }
}

/// Average pooling, `torch.nn.AvgPool2d`; `stride` defaults to the kernel size.
public final class AvgPool2d: Module, UnaryModule {
    public let kernelSize: Pair
    public let stride: Pair
    public let padding: Pair
    public let ceilMode: Bool
    public let countIncludePad: Bool

    public init(
        kernelSize: Pair, stride: Pair? = nil, padding: Pair = 0, ceilMode: Bool = false, countIncludePad: Bool = true
    ) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
        self.ceilMode = ceilMode
        self.countIncludePad = countIncludePad
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        try avgPool2d(
            input, kernelSize: kernelSize, stride: stride, padding: padding, ceilMode: ceilMode,
            countIncludePad: countIncludePad)
    }
}
