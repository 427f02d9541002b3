import Torch

/// Stochastic gradient descent with momentum and weight decay, as `torch.optim.SGD`:
///
///     g = grad + weightDecay * p
///     b = g (first step), else b = momentum * b + (1 - dampening) * g
///     g = nesterov ? g + momentum * b : b        (when momentum != 0)
///     p = p - lr * g
public final class SGD: Optimizer {
    public let parameters: [Parameter]
    public var learningRate: Double
    public let momentum: Double
    public let dampening: Double
    public let weightDecay: Double
    public let nesterov: Bool
    /// Momentum buffer of each parameter (nil before its first update).
    public private(set) var momentumBuffers: [Tensor?]

    public init(
        _ parameters: [Parameter], learningRate: Double, momentum: Double = 0, dampening: Double = 0,
        weightDecay: Double = 0, nesterov: Bool = false
    ) throws {
        guard !nesterov || (momentum > 0 && dampening == 0) else {
            throw TorchError("SGD: Nesterov momentum needs momentum > 0 and dampening 0")
        }
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        momentumBuffers = Array(repeating: nil, count: parameters.count)
    }

    public func step() throws {
        try withNoGrad {
            for (index, parameter) in parameters.enumerated() {
                let p = parameter.value
                guard var g = p.grad else { continue }
                if weightDecay != 0 { g = try g + weightDecay * p }
                if momentum != 0 {
                    let buffer: Tensor
                    if let existing = momentumBuffers[index] {
                        try existing.mul_(momentum)
                        try existing.add_(g, alpha: 1 - dampening)
                        buffer = existing
                    } else {
                        buffer = try g.clone()
                        momentumBuffers[index] = buffer
                    }
                    g = nesterov ? try g + momentum * buffer : buffer
                }
                try p.add_(g, alpha: -learningRate)
            }
        }
    }

    public func state() throws -> StateDict {
        var dict = StateDict()
        for (index, buffer) in momentumBuffers.enumerated() {
            if let buffer { dict["\(index).momentum_buffer"] = try buffer.clone() }
        }
        return dict
    }

    public func loadState(_ state: StateDict) throws {
        momentumBuffers = try perParameterState(state, key: "momentum_buffer", count: parameters.count)
    }
}
