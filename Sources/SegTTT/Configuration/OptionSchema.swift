import Foundation

/// A value an option can hold: read from command-line text or from a configuration file's
/// JSON value, and written back as JSON.
public protocol OptionValue {
    /// Parses command-line text; nil when the text is not a value of this type.
    static func parse(optionText text: String) -> Self?
    /// Reads a decoded JSON or YAML value; nil when it is not a value of this type.
    static func read(jsonValue value: Any) -> Self?
    /// The value as JSON (a number, a string, a Bool, or NSNull).
    var jsonValue: Any { get }
    /// What a valid value looks like, for messages: "a number", "one of sgd, adam".
    static var expected: String { get }
    /// The placeholder in help: "x", "n", "sgd|adam".
    static var placeholder: String { get }
}

/// Whether a decoded JSON or YAML value is a Boolean (JSONSerialization gives an NSNumber of
/// Objective-C type "c", YAML a Swift Bool).
private func isBoolean(_ value: Any) -> Bool {
    if type(of: value) == Bool.self { return true }
    guard type(of: value) is NSNumber.Type, let number = value as? NSNumber else { return false }
    return String(cString: number.objCType) == "c"
}

/// A decoded JSON or YAML number as a Double (nil for Booleans and other values).
private func numberValue(_ value: Any) -> Double? {
    guard !isBoolean(value) else { return nil }
    switch value {
    case let double as Double: return double
    case let int as Int: return Double(int)
    case let number as NSNumber: return number.doubleValue
    default: return nil
    }
}

extension Double: OptionValue {
    public static func parse(optionText text: String) -> Double? { Double(text) }
    public static func read(jsonValue value: Any) -> Double? { numberValue(value) }
    public var jsonValue: Any { self }
    public static var expected: String { "a number" }
    public static var placeholder: String { "x" }
}

extension Int: OptionValue {
    public static func parse(optionText text: String) -> Int? { Int(text) }
    public static func read(jsonValue value: Any) -> Int? {
        if !isBoolean(value), let int = value as? Int { return int }
        return numberValue(value).flatMap { Int(exactly: $0) }
    }
    public var jsonValue: Any { self }
    public static var expected: String { "a whole number" }
    public static var placeholder: String { "n" }
}

extension UInt64: OptionValue {
    public static func parse(optionText text: String) -> UInt64? { UInt64(text) }
    public static func read(jsonValue value: Any) -> UInt64? {
        guard !isBoolean(value) else { return nil }
        if let int = value as? Int { return int >= 0 ? UInt64(int) : nil }
        guard let number = value as? NSNumber, number.int64Value >= 0, Double(number.uint64Value) == number.doubleValue
        else { return nil }
        return number.uint64Value
    }
    public var jsonValue: Any { self }
    public static var expected: String { "a whole number from 0" }
    public static var placeholder: String { "n" }
}

extension String: OptionValue {
    public static func parse(optionText text: String) -> String? { text }
    public static func read(jsonValue value: Any) -> String? { value as? String }
    public var jsonValue: Any { self }
    public static var expected: String { "text" }
    public static var placeholder: String { "text" }
}

extension Bool: OptionValue {
    public static func parse(optionText text: String) -> Bool? {
        switch text.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: return nil
        }
    }
    public static func read(jsonValue value: Any) -> Bool? { isBoolean(value) ? value as? Bool : nil }
    public var jsonValue: Any { self }
    public static var expected: String { "true or false" }
    public static var placeholder: String { "bool" }
}

/// An optional setting: "none" on the command line and null in a file turn it off.
extension Optional: OptionValue where Wrapped: OptionValue {
    public static func parse(optionText text: String) -> Wrapped?? {
        if text.lowercased() == "none" { return .some(.none) }
        return Wrapped.parse(optionText: text).map { .some($0) }
    }
    public static func read(jsonValue value: Any) -> Wrapped?? {
        if value is NSNull { return .some(.none) }
        return Wrapped.read(jsonValue: value).map { .some($0) }
    }
    public var jsonValue: Any { self.map(\.jsonValue) ?? NSNull() }
    public static var expected: String { "\(Wrapped.expected), or none" }
    public static var placeholder: String { Wrapped.placeholder }
}

/// A closed set of named choices as an option value: its raw values are the names.
public protocol OptionChoice: OptionValue, RawRepresentable, CaseIterable where RawValue == String {}

extension OptionChoice {
    public static func parse(optionText text: String) -> Self? { Self(rawValue: text) }
    public static func read(jsonValue value: Any) -> Self? { (value as? String).flatMap { Self(rawValue: $0) } }
    public var jsonValue: Any { rawValue }
    public static var choices: String { allCases.map(\.rawValue).joined(separator: ", ") }
    public static var expected: String { "one of \(choices)" }
    public static var placeholder: String { allCases.map(\.rawValue).joined(separator: "|") }
}

/// A setting that failed to read or to pass its check. `key` is the option's name; the tool
/// shows it as `--key`, a configuration file's reader as the file's key.
public struct OptionError: Error, Equatable, CustomStringConvertible {
    public let key: String
    /// The offending value as given.
    public let value: String
    /// What to give instead.
    public let fix: String

    public init(key: String, value: String, fix: String) {
        self.key = key
        self.value = value
        self.fix = fix
    }

    public var description: String { "\(key) \(value): \(fix)" }
}

/// One named setting of a configuration type `Root`: its key (the command-line flag's long
/// name and the configuration file's key), its help line, and how it reads and writes the
/// field behind it.
public struct ConfigOption<Root>: @unchecked Sendable {
    public let key: String
    public let help: String
    /// Placeholder of the value in help ("x", "sgd|adam"); nil for a Boolean flag.
    public let placeholder: String?
    /// Whether a run's numbers depend on it (a resumed run must keep it).
    public let affectsResults: Bool
    fileprivate let parseText: (inout Root, String) -> Bool
    fileprivate let readJSON: (inout Root, Any) -> Bool
    fileprivate let expected: String
    /// The current value of the field, as JSON.
    public let json: (Root) -> Any

    /// An option for the field at `path`.
    public init<Value: OptionValue>(
        _ key: String, _ path: WritableKeyPath<Root, Value>, help: String, affectsResults: Bool = true
    ) {
        self.key = key
        self.help = help
        placeholder = Value.self == Bool.self ? nil : Value.placeholder
        self.affectsResults = affectsResults
        parseText = { root, text in
            guard let value = Value.parse(optionText: text) else { return false }
            root[keyPath: path] = value
            return true
        }
        readJSON = { root, json in
            guard let value = Value.read(jsonValue: json) else { return false }
            root[keyPath: path] = value
            return true
        }
        expected = Value.expected
        json = { $0[keyPath: path].jsonValue }
    }

    /// Sets the field from command-line text. A Boolean flag's text is "true" or "false".
    public func set(_ root: inout Root, text: String) throws {
        guard parseText(&root, text) else { throw OptionError(key: key, value: text, fix: "give \(expected)") }
    }

    /// Sets the field from a configuration file's value.
    public func set(_ root: inout Root, json: Any) throws {
        guard readJSON(&root, json) else {
            throw OptionError(key: key, value: "\(json)", fix: "give \(expected)")
        }
    }
}

/// Where a setting came from: command-line text or a configuration file's value.
public enum OptionInput {
    case text(String)
    case json(Any)
}

/// Named settings in the order they were given; a later one overrides an earlier one. Each
/// remembers where it came from (a configuration file's path, or nil for the command line).
public struct OptionInputs {
    public private(set) var entries: [(key: String, input: OptionInput, source: String?)] = []

    public init() {}

    /// The fields of a configuration file read from `source`.
    public init(json fields: [String: Any], source: String? = nil) {
        entries = fields.sorted { $0.key < $1.key }.map { ($0.key, .json($0.value), source) }
    }

    public mutating func append(_ key: String, _ input: OptionInput, source: String? = nil) {
        entries.append((key, input, source))
    }

    /// These settings, then `other`'s over them.
    public func overridden(by other: OptionInputs) -> OptionInputs {
        var merged = self
        merged.entries += other.entries
        return merged
    }

    /// The last value given for `key`.
    public subscript(key: String) -> OptionInput? { entries.last { $0.key == key }?.input }

    /// Where the last value of `key` came from (nil: the command line or not given).
    public func source(of key: String) -> String? { entries.last { $0.key == key }?.source }
}

/// The options of a configuration type, looked up by key.
public struct OptionSchema<Root>: @unchecked Sendable {
    public let options: [ConfigOption<Root>]

    public init(_ options: [ConfigOption<Root>]) {
        self.options = options
    }

    public func option(_ key: String) -> ConfigOption<Root>? { options.first { $0.key == key } }

    public var keys: [String] { options.map(\.key) }

    /// Sets every field `inputs` names that this schema has; other keys are left to others.
    public func apply(_ inputs: OptionInputs, to root: inout Root) throws {
        for entry in inputs.entries {
            guard let option = option(entry.key) else { continue }
            switch entry.input {
            case .text(let text): try option.set(&root, text: text)
            case .json(let value): try option.set(&root, json: value)
            }
        }
    }

    /// Every field as JSON, by key.
    public func values(of root: Root) -> [String: Any] {
        Dictionary(uniqueKeysWithValues: options.map { ($0.key, $0.json(root)) })
    }

    /// Whether `key` is a Boolean flag (given as --key or --no-key).
    public func isFlag(_ key: String) -> Bool { option(key).map { $0.placeholder == nil } ?? false }

    /// Help lines: "  --key <x>" and the help text in a column from `column`, wrapped to
    /// `width` characters (an option whose name reaches the column starts its help on the
    /// next line).
    public func helpLines(column: Int = 30, width: Int = 79) -> [String] {
        var lines: [String] = []
        for option in options {
            let name = "  --\(option.key)" + (option.placeholder.map { " <\($0)>" } ?? " / --no-\(option.key)")
            var words = option.help.split(separator: " ").map(String.init)
            var line = name.count < column - 1 ? name.padding(toLength: column, withPad: " ", startingAt: 0) : name
            if name.count >= column - 1 {
                lines.append(line)
                line = String(repeating: " ", count: column)
            }
            var empty = true
            while !words.isEmpty {
                let word = words.removeFirst()
                if !empty, line.count + 1 + word.count > width {
                    lines.append(line)
                    line = String(repeating: " ", count: column)
                    empty = true
                }
                line += (empty ? "" : " ") + word
                empty = false
            }
            lines.append(line)
        }
        return lines
    }
}

/// A list of values: comma-separated on the command line, an array in a file.
extension Array: OptionValue where Element: OptionValue {
    public static func parse(optionText text: String) -> [Element]? {
        let values = text.split(separator: ",").map { Element.parse(optionText: $0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, !values.contains(where: { $0 == nil }) else { return nil }
        return values.compactMap { $0 }
    }
    public static func read(jsonValue value: Any) -> [Element]? {
        guard let items = value as? [Any] else { return nil }
        let values = items.map { Element.read(jsonValue: $0) }
        return values.contains { $0 == nil } ? nil : values.compactMap { $0 }
    }
    public var jsonValue: Any { map(\.jsonValue) }
    public static var expected: String { "a comma-separated list of \(Element.expected)s" }
    public static var placeholder: String { "\(Element.placeholder),..." }
}
