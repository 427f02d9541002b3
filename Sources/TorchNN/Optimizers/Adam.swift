import Foundation
import Torch

/// Adam (Kingma and Ba, 2015), as `torch.optim.Adam` without amsgrad:
///
///     g = grad + weightDecay * p
///     m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g^2
///     p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
public final class Adam: Optimizer {
    public let parameters: [Parameter]
    public var learningRate: Double
    public let beta1: Double
    public let beta2: Double
    public let eps: Double
    public let weightDecay: Double
    /// Number of steps taken.
    public private(set) var stepCount = 0
    /// First-moment estimate m of each parameter (nil before its first update).
    public private(set) var expAvg: [Tensor?]
    /// Second-moment estimate v of each parameter (nil before its first update).
    public private(set) var expAvgSq: [Tensor?]

    public init(
        _ parameters: [Parameter], learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999,
        eps: Double = 1e-8, weightDecay: Double = 0
    ) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        expAvg = Array(repeating: nil, count: parameters.count)
        expAvgSq = Array(repeating: nil, count: parameters.count)
    }

    public func step() throws {
        stepCount += 1
        let t = Double(stepCount)
        let stepSize = learningRate / (1 - Foundation.pow(beta1, t))
        let correction2 = Foundation.sqrt(1 - Foundation.pow(beta2, t))
        try withNoGrad {
            for (index, parameter) in parameters.enumerated() {
                let p = parameter.value
                guard var g = p.grad else { continue }
                if weightDecay != 0 { g = try g + weightDecay * p }
                let m = try expAvg[index] ?? p.zerosLike()
                let v = try expAvgSq[index] ?? p.zerosLike()
                try m.mul_(beta1)
                try m.add_(g, alpha: 1 - beta1)
                try v.mul_(beta2)
                try v.addcmul_(g, g, value: 1 - beta2)
                expAvg[index] = m
                expAvgSq[index] = v
                let denominator = try v.sqrt() / correction2 + eps
                try p.addcdiv_(m, denominator, value: -stepSize)
            }
        }
    }

    public func state() throws -> StateDict {
        var dict = StateDict()
        dict["step"] = try Tensor(scalar: Int64(stepCount))
        for index in parameters.indices {
            if let m = expAvg[index] { dict["\(index).exp_avg"] = try m.clone() }
            if let v = expAvgSq[index] { dict["\(index).exp_avg_sq"] = try v.clone() }
        }
        return dict
    }

    public func loadState(_ state: StateDict) throws {
        stepCount = try state["step"]?.itemInt() ?? 0
        expAvg = try perParameterState(state, key: "exp_avg", count: parameters.count)
        expAvgSq = try perParameterState(state, key: "exp_avg_sq", count: parameters.count)
    }
}
