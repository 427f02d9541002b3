import Torch

/// A copy of a module's parameters and buffers at one moment (e.g. the source weights before
/// test-time adaptation), restorable whole or element by element.
public struct Snapshot {
    /// The copied tensors by state-dict name.
    public let tensors: StateDict

    /// Copies every parameter and buffer of `module`.
    public init(of module: Module) throws {
        tensors = StateDict(try withNoGrad { try module.stateDict().map { ($0.name, try $0.tensor.clone()) } })
    }

    /// Puts every saved value back into `module` (in place).
    public func restore(_ module: Module) throws {
        try module.load(tensors)
    }

    /// Puts saved values back into `module`'s parameters where `mask(name, parameter)`
    /// returns true elements: p = where(mask, saved, p). Parameters for which it returns nil
    /// are left as they are; buffers are not touched.
    public func restoreParameters(_ module: Module, mask: (String, Parameter) throws -> Tensor?) throws {
        try withNoGrad {
            for (name, parameter) in module.namedParameters() {
                guard let saved = tensors[name], let keep = try mask(name, parameter) else { continue }
                try parameter.value.copy_(Tensor.where(keep, saved, parameter.value))
            }
        }
    }
}
