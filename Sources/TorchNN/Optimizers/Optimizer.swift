import Torch

/// Updates parameters from their accumulated gradients.
public protocol Optimizer: AnyObject {
    /// The parameters updated, in a fixed order (their index names their state).
    var parameters: [Parameter] { get }
    /// Learning rate (schedulers change it between steps).
    var learningRate: Double { get set }
    /// One update of every parameter that has a gradient.
    func step() throws
    /// Per-parameter state by name ("3.momentum_buffer", "step"), to inspect, save and restore.
    func state() throws -> StateDict
    /// Restores state saved by `state()` for the same parameters.
    func loadState(_ state: StateDict) throws
}

extension Optimizer {
    /// Drops every parameter's gradient (as `zero_grad(set_to_none=True)`).
    public func zeroGrad() throws {
        for parameter in parameters { try parameter.value.zeroGrad() }
    }
}

/// Reads per-parameter tensors named "<index>.<key>" from an optimizer state dict.
func perParameterState(_ state: StateDict, key: String, count: Int) throws -> [Tensor?] {
    try (0..<count).map { index in
        guard let tensor = state["\(index).\(key)"] else { return nil }
        return try tensor.clone()
    }
}
