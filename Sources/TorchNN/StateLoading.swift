import Torch

/// How a state dict differs from the module it is loaded into.
public struct StateDictMismatch: Error, CustomStringConvertible, Equatable {
    /// Names the module has and the state dict lacks.
    public var missing: [String] = []
    /// Names the state dict has and the module lacks.
    public var unexpected: [String] = []
    /// Names present in both with different shapes.
    public var shapeMismatches: [(name: String, expected: [Int], actual: [Int])] = []

    public var isEmpty: Bool { missing.isEmpty && unexpected.isEmpty && shapeMismatches.isEmpty }

    public var description: String {
        var lines = ["the checkpoint does not fit the model:"]
        if !shapeMismatches.isEmpty {
            lines.append("  shape mismatches (\(shapeMismatches.count)):")
            lines += shapeMismatches.map { "    \($0.name): model expects \($0.expected), checkpoint has \($0.actual)" }
        }
        if !missing.isEmpty {
            lines.append("  missing from the checkpoint (\(missing.count)): " + missing.joined(separator: ", "))
        }
        if !unexpected.isEmpty {
            lines.append("  not in the model (\(unexpected.count)): " + unexpected.joined(separator: ", "))
        }
        lines.append(
            "  check that the checkpoint belongs to this model and variant; a `module.` prefix or a "
                + "`state_dict` wrapper is removed automatically")
        return lines.joined(separator: "\n")
    }

    public static func == (a: StateDictMismatch, b: StateDictMismatch) -> Bool {
        a.missing == b.missing && a.unexpected == b.unexpected
            && a.shapeMismatches.map { "\($0.name)\($0.expected)\($0.actual)" }
                == b.shapeMismatches.map { "\($0.name)\($0.expected)\($0.actual)" }
    }
}

extension Module {
    /// Copies the values of `state` into this module's parameters and buffers, by name.
    ///
    /// Values are converted to each tensor's dtype and device. A DataParallel `module.`
    /// prefix on every name is removed first. Shape mismatches always throw. With `strict`
    /// (the default) a missing or unexpected name throws too; otherwise the tensors that fit
    /// are loaded and the returned report lists the rest. Nothing is changed when it throws.
    @discardableResult
    public func load(_ state: StateDict, strict: Bool = true) throws -> StateDictMismatch {
        let state = state.removingDataParallelPrefix()
        var report = StateDictMismatch()
        var targets: [(Tensor, Tensor)] = []
        var known = Set<String>()
        let entries =
            namedParameters().map { ($0.name, $0.parameter.value, false) }
            + namedBuffers().map { ($0.name, $0.buffer.value, $0.buffer.isOptionalInCheckpoint) }
        for (name, tensor, optional) in entries {
            known.insert(name)
            guard let source = state[name] else {
                if !optional { report.missing.append(name) }
                continue
            }
            if source.shape != tensor.shape {
                report.shapeMismatches.append((name, tensor.shape, source.shape))
            } else {
                targets.append((tensor, source))
            }
        }
        report.unexpected = state.names.filter { !known.contains($0) }
        if !report.shapeMismatches.isEmpty || (strict && !report.isEmpty) { throw report }
        try withNoGrad {
            for (tensor, source) in targets { try tensor.copy_(source) }
        }
        return report
    }
}
