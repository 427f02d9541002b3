import Torch
import TorchNN

/// Stochastic restoration (Wang et al., CoTTA, CVPR 2022), as OCL uses it: after each step,
/// every element of every adapted weight returns to its source value with probability
/// `ratio`, independently. Optimizer state (momentum) is left as it is.
public struct StochasticRestoration {
    public let ratio: Double
    public let source: Snapshot

    public init(ratio: Double, source: Snapshot) {
        self.ratio = ratio
        self.source = source
    }

    /// Restores elements of the parameters in `adapted` (by identity) where U(0, 1) < ratio,
    /// drawing from `generator` in state-dict order.
    public func apply(to model: Module, adapted: [Parameter], generator: Generator) throws {
        guard ratio > 0 else { return }
        let ids = Set(adapted.map(ObjectIdentifier.init))
        try source.restoreParameters(model) { _, parameter in
            guard ids.contains(ObjectIdentifier(parameter)) else { return nil }
            return try Tensor.uniform(parameter.value.shape, generator: generator).lt(ratio).to(
                device: parameter.value.device)
        }
    }
}
