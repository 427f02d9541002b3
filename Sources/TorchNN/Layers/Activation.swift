import Torch

/// max(0, x), `torch.nn.ReLU`.
public final class ReLU: Module, UnaryModule {
    public override init() {}

    public func forward(_ input: Tensor) throws -> Tensor {
        try input.relu()
    }
}

/// Parametric ReLU, `torch.nn.PReLU`: max(0, x) + a * min(0, x) with a learned slope per
/// channel (or one shared slope), initialised to `initialSlope`.
public final class PReLU: Module, UnaryModule {
    public let weight: Parameter

    public init(_ numParameters: Int = 1, initialSlope: Double = 0.25) throws {
        weight = try Parameter(Tensor.full([numParameters], value: initialSlope))
        super.init()
        registerParameter("weight", weight)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        try prelu(input, weight: weight.value)
    }
}
