import Foundation

/// The name of a registered method ("ocl", "tent", ...), with the built-in names as constants.
public struct MethodName: RawRepresentable, Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { rawValue = value }
    public var description: String { rawValue }

    public static let source: MethodName = "source"
    public static let bnPrior: MethodName = "bn-prior"
    public static let bnSelect: MethodName = "bn-select"
    public static let bnAlpha: MethodName = "bn-alpha"
    public static let bnEMA: MethodName = "bn-ema"
    public static let tent: MethodName = "tent"
    public static let ocl: MethodName = "ocl"
    public static let cotta: MethodName = "cotta"
    public static let plReset: MethodName = "pl-reset"
    public static let diga: MethodName = "diga"
}

/// A method as the registry knows it: its name, its type, its documented settings per preset,
/// its help line and the loss terms its frame records report.
public struct MethodEntry: @unchecked Sendable {
    public let name: String
    /// One line for `--help` and the docs.
    public let summary: String
    public let type: any TestTimeMethod.Type
    /// The loss terms its records report (`FrameRecord.losses`), total first; empty without a step.
    public let lossTerms: [String]
    /// The settings it runs with under a preset.
    public let defaults: @Sendable (ConfigurationPreset) -> AdaptationConfig

    public init(
        name: String, summary: String, type: any TestTimeMethod.Type, lossTerms: [String] = [],
        defaults: @escaping @Sendable (ConfigurationPreset) -> AdaptationConfig
    ) {
        self.name = name
        self.summary = summary
        self.type = type
        self.lossTerms = lossTerms
        self.defaults = defaults
    }

    /// The same settings under both presets.
    public init(
        name: String, summary: String, type: any TestTimeMethod.Type, lossTerms: [String] = [],
        settings: AdaptationConfig
    ) {
        self.init(name: name, summary: summary, type: type, lossTerms: lossTerms) { _ in settings }
    }

    /// Creates the method on `model` with `config` (checked first).
    public func make(model: any SegmentationModel, config: AdaptationConfig) throws -> any TestTimeMethod {
        try config.validate()
        return try type.init(model: model, config: config)
    }
}

/// The registry of test-time methods: the tool's `--method`, `compare`, `demo`, the results
/// command, the docs and the tests read the list from here. The built-in methods come first;
/// `register(_:)` adds one written elsewhere.
public enum Methods {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var entries: [MethodEntry] = builtIn

    /// Every registered method, built-in ones first.
    public static var all: [MethodEntry] { lock.withLock { entries } }

    public static func named(_ name: String) -> MethodEntry? { all.first { $0.name == name } }

    /// "source, bn-prior, ..." for messages and help.
    public static var validNames: String { all.map(\.name).joined(separator: ", ") }

    /// Adds `entry`, replacing a registered method of the same name.
    public static func register(_ entry: MethodEntry) {
        lock.withLock {
            entries.removeAll { $0.name == entry.name }
            entries.append(entry)
        }
    }

    /// The methods `segttt compare` and `segttt demo` run when none are named: the frozen
    /// network, the gradient-free baseline, the default (bn-select), the classic gradient
    /// method and the flagship.
    public static let defaultComparison: [MethodName] = [.source, .bnPrior, .bnSelect, .tent, .ocl]

    /// The methods SegTTT ships, each documented in its own file.
    static let builtIn: [MethodEntry] = [
        SourceOnly.entry, BatchNormAdaptation.bnPrior, BatchNormAdaptation.bnAlpha, BatchNormAdaptation.bnEMA,
        PriorSelection.entry,
        Tent.entry, OCL.entry, CoTTA.entry, PseudoLabelReset.entry, DIGA.entry,
    ]
}
