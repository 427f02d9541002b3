import ArgumentParser
import Foundation
import SegTTT

/// The options of a run along a stream, shared by `adapt` and `compare`: every key of
/// `RunConfiguration` as a flag (`--lr 2e-5`, `--lr=2e-5`, `--flip`, `--no-flip`), and a
/// configuration file under them.
struct RunArguments: ParsableArguments {
    @Option(help: "A JSON or YAML file of options (the flags given here override it).")
    var config: String?

    @Argument(parsing: .allUnrecognized, help: .hidden)
    var options: [String] = []

    /// The configuration file's options, then the flags over them, then `overrides` (the
    /// command's own, such as the method a comparison runs).
    func inputs(_ overrides: OptionInputs = OptionInputs()) throws -> OptionInputs {
        let file = try config.map { try RunConfiguration.read(URL(fileURLWithPath: $0)) } ?? OptionInputs()
        return file.overridden(by: try Self.parse(options)).overridden(by: overrides)
    }

    /// The resolved configuration, with usage errors (exit 64) naming the flag or the file's key.
    func configuration(_ overrides: OptionInputs = OptionInputs()) throws -> RunConfiguration {
        let inputs = try inputs(overrides)
        do {
            return try RunConfiguration(inputs)
        } catch let error as OptionError {
            throw error.usageError(inputs)
        }
    }

    /// Reads `--key value`, `--key=value`, `--flag` and `--no-flag` for the keys of
    /// `RunConfiguration`.
    ///
    /// - Throws: `ValidationError` for an unknown option, a missing value or a stray argument.
    static func parse(_ arguments: [String]) throws -> OptionInputs {
        let keys = Set(RunConfiguration.keys)
        var inputs = OptionInputs()
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw ValidationError("unexpected argument '\(argument)'; options are --name value (see --help)")
            }
            var name = String(argument.dropFirst(2))
            var value: String?
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            if isFlag(name) {
                inputs.append(name, .text(value ?? "true"))
                continue
            }
            if name.hasPrefix("no-"), value == nil, isFlag(String(name.dropFirst(3))) {
                inputs.append(String(name.dropFirst(3)), .text("false"))
                continue
            }
            guard keys.contains(name) else {
                throw ValidationError("unknown option '--\(name)'; see `segttt adapt --help` for the options")
            }
            if value == nil {
                guard index < arguments.count, !arguments[index].hasPrefix("--") else {
                    throw ValidationError("missing value for '--\(name)'; give --\(name) \(placeholder(name))")
                }
                value = arguments[index]
                index += 1
            }
            inputs.append(name, .text(value ?? ""))
        }
        return inputs
    }

    private static func isFlag(_ key: String) -> Bool {
        RunSettings.schema.isFlag(key) || AdaptationConfig.schema.isFlag(key)
    }

    private static func placeholder(_ key: String) -> String {
        let option = RunSettings.schema.option(key)?.placeholder ?? AdaptationConfig.schema.option(key)?.placeholder
        return "<\(option ?? "value")>"
    }

    /// A method's name and help line, wrapped as the options' help.
    private static func methodLines(_ entry: MethodEntry) -> [String] {
        var lines: [String] = []
        var line = "    " + entry.name.padding(toLength: 10, withPad: " ", startingAt: 0)
        for word in entry.summary.split(separator: " ") {
            if line.count + 1 + word.count > 79 {
                lines.append(line)
                line = String(repeating: " ", count: 14)
            }
            line += (line.hasSuffix(" ") ? "" : " ") + word
        }
        return lines + [line]
    }

    /// The options by group, for a command's help.
    static var help: String {
        func section(_ title: String, _ lines: [String]) -> String { "\(title):\n" + lines.joined(separator: "\n") }
        return [
            section("MODEL", RunSettings.modelSchema.helpLines()),
            section("STREAM", RunSettings.streamSchema.helpLines()),
            section("METHOD", RunSettings.methodSchema.helpLines() + Methods.all.flatMap(Self.methodLines)),
            section("METHOD OPTIONS (default: the method's settings under --preset)", AdaptationConfig.schema.helpLines()),
            section("RUNTIME AND OUTPUTS", RunSettings.runtimeSchema.helpLines()),
        ].joined(separator: "\n\n")
    }
}

extension ConfigurationPreset: ExpressibleByArgument {}
