import Torch

/// Named tensors in a fixed order, as PyTorch's `state_dict()`: parameter and buffer names
/// joined with dots (`encoder.level2.0.bn.bn.running_mean`).
public struct StateDict: Sequence {
    /// Names in insertion order.
    public private(set) var names: [String] = []
    private var tensors: [String: Tensor] = [:]

    public init() {}

    /// Builds a state dict from pairs, keeping their order; a repeated name keeps its first place.
    public init(_ pairs: [(String, Tensor)]) {
        for (name, tensor) in pairs { self[name] = tensor }
    }

    public var count: Int { names.count }

    public subscript(name: String) -> Tensor? {
        get { tensors[name] }
        set {
            if let newValue {
                if tensors.updateValue(newValue, forKey: name) == nil { names.append(name) }
            } else if tensors.removeValue(forKey: name) != nil {
                names.removeAll { $0 == name }
            }
        }
    }

    public func makeIterator() -> AnyIterator<(name: String, tensor: Tensor)> {
        var index = 0
        return AnyIterator {
            guard index < names.count else { return nil }
            defer { index += 1 }
            let name = names[index]
            // Every listed name has a tensor.
            return tensors[name].map { (name, $0) }
        }
    }

    /// The same tensors with `prefix` removed from every name that starts with it
    /// (e.g. DataParallel's `module.`).
    public func removingPrefix(_ prefix: String) -> StateDict {
        StateDict(map { ($0.name.hasPrefix(prefix) ? String($0.name.dropFirst(prefix.count)) : $0.name, $0.tensor) })
    }

    /// The same tensors without the `module.` that DataParallel puts before every name of a
    /// model it wraps, when every name has it; otherwise the same state dict.
    public func removingDataParallelPrefix() -> StateDict {
        !names.isEmpty && names.allSatisfy({ $0.hasPrefix("module.") }) ? removingPrefix("module.") : self
    }

    /// The same tensors with `prefix` put before every name.
    public func addingPrefix(_ prefix: String) -> StateDict {
        StateDict(map { (prefix + $0.name, $0.tensor) })
    }
}
