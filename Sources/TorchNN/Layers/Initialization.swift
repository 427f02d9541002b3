import Foundation
import Torch

/// Weight initialisations as `torch.nn.init` defines them.
public enum Initialization {
    /// Fan-in of a weight as PyTorch computes it: size(1) times the receptive field
    /// (for a transposed convolution size(1) is the output channels per group).
    public static func fanIn(_ shape: [Int]) -> Int {
        shape.count < 2 ? shape.first ?? 1 : shape[1] * shape.dropFirst(2).reduce(1, *)
    }

    /// Fan-out: size(0) times the receptive field.
    public static func fanOut(_ shape: [Int]) -> Int {
        (shape.first ?? 1) * shape.dropFirst(2).reduce(1, *)
    }

    /// PyTorch's default for Conv and Linear layers, kaiming_uniform_(a = sqrt(5)):
    /// U(-b, b) with b = sqrt(6 / ((1 + a^2) * fanIn)) = 1 / sqrt(fanIn).
    public static func defaultWeight(_ shape: [Int], generator: Generator? = nil) throws -> Tensor {
        let bound = 1 / Foundation.sqrt(Double(Swift.max(fanIn(shape), 1)))
        return try Tensor.uniform(shape, low: -bound, high: bound, generator: generator)
    }

    /// PyTorch's default bias of a layer with weight shape `weightShape`: U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
    public static func defaultBias(_ count: Int, weightShape: [Int], generator: Generator? = nil) throws -> Tensor {
        let bound = 1 / Foundation.sqrt(Double(Swift.max(fanIn(weightShape), 1)))
        return try Tensor.uniform([count], low: -bound, high: bound, generator: generator)
    }

    /// kaiming_normal_: N(0, std^2) with std = gain / sqrt(fan), gain = sqrt(2) for ReLU.
    public static func kaimingNormal(_ shape: [Int], fanOutMode: Bool = false, generator: Generator? = nil) throws
        -> Tensor
    {
        let fan = fanOutMode ? fanOut(shape) : fanIn(shape)
        return try Tensor.normal(shape, std: Foundation.sqrt(2.0 / Double(Swift.max(fan, 1))), generator: generator)
    }
}
