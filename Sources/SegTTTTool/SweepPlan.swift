import Foundation
import SegTTT
import TorchNN
import Yams

/// A plan of runs, read from a YAML or JSON file: streams x methods x grid values x seeds,
/// each run one `segttt adapt` into a folder of its own under the output root.
///
///     output: out/sweep                 # the output root
///     options: {threads: 1, predictions: false}   # every run (keys of segttt adapt)
///     streams:                          # name -> options, or a file of them (from the plan's folder)
///       night: {model: espnet, checkpoint: w.pth, dataset: "synthetic:night:40"}
///     methods: [bn-prior, tent]         # names, or name -> options: {ocl-published: {method: ocl, preset: published}}
///     grid: {lr: [1.0e-5, 2.0e-5]}      # optional: every combination of these values
///     seeds: [0, 1, 2]                  # optional (default [0]): sets seed and corruption-seed
///     parts:                            # optional: products of subsets instead of the whole one
///       - {methods: [bn-prior], seeds: [0]}
///       - {streams: [night], methods: [tent], grid: {lr: [1.0e-4]}}
///
/// A run's options are the plan's `options`, then its stream's, its method's, its grid
/// values and its seed, each over the ones before. Without `parts` the runs are every
/// stream x method x grid values x seed; each part is such a product over the streams and
/// methods it names (default: all of them), with its own grid and seeds (default: the
/// plan's). Runs are numbered from 0 part by part, in the order stream, method, grid values,
/// seed; run I writes to OUTPUT/STREAM/VARIANT/seed-S, where VARIANT is the method's name
/// followed by its grid values (`tent_lr-2e-05`).
struct SweepPlan {
    /// One run of the plan.
    struct Run: Equatable {
        var index: Int
        var stream: String
        /// The method's name in the plan.
        var method: String
        /// The method's name and its grid values, as the merged table names it.
        var variant: String
        var seed: Int
        var folder: URL
        /// The options of `segttt adapt` (keys without dashes), as text.
        var options: [(key: String, value: String)]

        static func == (a: Run, b: Run) -> Bool {
            a.index == b.index && a.folder == b.folder && a.options.elementsEqual(b.options) { $0 == $1 }
        }

        var inputs: OptionInputs {
            var inputs = OptionInputs()
            for (key, value) in options { inputs.append(key, .text(value)) }
            return inputs
        }
    }

    let file: URL
    let output: URL
    let runs: [Run]
    /// Whether any run asks for a GPU (`device: cuda...`).
    var usesCUDA: Bool { runs.contains { $0.options.last { $0.key == "device" }?.value.hasPrefix("cuda") ?? false } }
    /// The libtorch threads the plan gives its runs, if it says.
    var threads: Int? { runs.first?.options.last { $0.key == "threads" }.flatMap { Int($0.value) } }

    /// The plan's keys.
    static let keys: Set<String> = ["output", "options", "streams", "methods", "grid", "seeds", "parts"]
    /// The keys of one of `parts`.
    static let partKeys: Set<String> = ["streams", "methods", "grid", "seeds"]

    /// Reads and checks the plan: every run's options must resolve as `segttt adapt`'s would.
    ///
    /// - Throws: `ToolError` naming the file and the key or run at fault, and the fix.
    init(contentsOf file: URL) throws {
        self.file = file
        func fail(_ message: String) -> ToolError { ToolError("\(file.path): \(message)") }
        guard let plan = try Self.mapping(in: file, what: "plan") else {
            throw fail("expected a mapping with output, streams and methods (see `segttt sweep --help`)")
        }
        if let unknown = plan.keys.sorted().first(where: { !Self.keys.contains($0) }) {
            throw fail("unknown key '\(unknown)'; a plan has \(Self.keys.sorted().joined(separator: ", "))")
        }
        guard let output = plan["output"] as? String, !output.isEmpty else {
            throw fail("'output' is missing; give the folder the runs write to, e.g. output: out/sweep")
        }
        self.output = URL(fileURLWithPath: (output as NSString).expandingTildeInPath)
        let common = try Self.options(plan["options"] ?? [String: Any](), "options", fail)
        let streams: [(name: String, options: [(key: String, value: String)])]
        if let path = plan["streams"] as? String {
            // A file of stream definitions that several plans share, read from the plan's folder.
            let shared = URL(fileURLWithPath: path, relativeTo: file.deletingLastPathComponent()).standardizedFileURL
            guard let definitions = try Self.mapping(in: shared, what: "streams file (from the plan's 'streams')") else {
                throw ToolError("\(shared.path): expected a mapping of stream names to options")
            }
            streams = try Self.named(definitions, "streams", { ToolError("\(shared.path): \($0)") })
        } else {
            streams = try Self.named(plan["streams"], "streams", fail)
        }
        guard !streams.isEmpty else { throw fail("'streams' is missing or empty; name at least one stream") }
        let methods = try Self.named(plan["methods"], "methods", fail, bareKey: "method")
        guard !methods.isEmpty else { throw fail("'methods' is missing or empty; name at least one method") }
        let grid = try Self.grid(plan["grid"], fail)
        let seeds = try Self.seeds(plan["seeds"], "seeds", fail)
        let parts = try Self.parts(
            plan["parts"], streams: streams.map(\.name), methods: methods.map(\.name), grid: grid, seeds: seeds, fail)
        var runs: [Run] = []
        var folders: [URL: Int] = [:]
        for part in parts {
            for (stream, streamOptions) in streams where part.streams.contains(stream) {
                for (method, methodOptions) in methods where part.methods.contains(method) {
                    for values in part.grid {
                        for seed in part.seeds {
                            let seedOptions = [("seed", "\(seed)"), ("corruption-seed", "\(seed)")]
                            let variant = ([method] + values.map { "\($0.key)-\($0.value)" }).joined(separator: "_")
                            let run = Run(
                                index: runs.count, stream: stream, method: method, variant: variant, seed: seed,
                                folder: self.output.appendingPathComponent(stream).appendingPathComponent(
                                    Self.folderName(variant)
                                ).appendingPathComponent("seed-\(seed)"),
                                options: common + streamOptions + methodOptions + values + seedOptions)
                            let what = "run \(run.index) (\(stream), \(variant), seed \(seed))"
                            if let earlier = folders.updateValue(run.index, forKey: run.folder) {
                                throw fail("\(what) is run \(earlier) again; let each part name it once")
                            }
                            do {
                                _ = try RunConfiguration(run.inputs)
                            } catch let error as OptionError {
                                throw fail("\(what): '\(error.key)' \(error.value): \(error.fix)")
                            }
                            runs.append(run)
                        }
                    }
                }
            }
        }
        self.runs = runs
    }

    /// The mapping a YAML (.yaml, .yml) or JSON file holds, nil when it holds something else.
    ///
    /// - Throws: `ToolError` naming the file when it cannot be read or parsed.
    private static func mapping(in file: URL, what: String) throws -> [String: Any]? {
        func fail(_ message: String) -> ToolError { ToolError("\(file.path): \(message)") }
        if let problem = FileFailure.notAFile(file) { throw fail("the \(what) \(problem)") }
        guard let data = FileManager.default.contents(atPath: file.path) else { throw fail("cannot read the \(what)") }
        let isYAML = ["yaml", "yml"].contains(file.pathExtension.lowercased())
        do {
            let object: Any? = isYAML
                ? try Yams.load(yaml: String(decoding: data, as: UTF8.self)) : try JSONSerialization.jsonObject(with: data)
            return object as? [String: Any]
        } catch {
            throw fail("not valid \(isYAML ? "YAML" : "JSON") (\(isYAML ? "\(error)" : FileFailure.syntaxReason(error))); fix the syntax")
        }
    }

    /// A mapping of option keys to scalar values, as text.
    private static func options(_ value: Any, _ what: String, _ fail: (String) -> ToolError) throws -> [(key: String, value: String)] {
        guard let fields = value as? [String: Any] else {
            throw fail("'\(what)' must map option names to values, e.g. {method: tent}")
        }
        return try fields.keys.sorted().map { key in
            guard key != "output" else {
                throw fail("'\(what)' sets output; the plan chooses each run's folder under its own 'output'")
            }
            return (key, try text(fields[key] as Any, "\(what).\(key)", fail))
        }
    }

    /// A scalar as the text a flag would carry.
    private static func text(_ value: Any, _ what: String, _ fail: (String) -> ToolError) throws -> String {
        switch value {
        case let flag as Bool where !(value is Int) && !(value is Double): return flag ? "true" : "false"
        case let number as Int: return "\(number)"
        case let number as Double: return "\(number)"
        case let number as NSNumber: return number.stringValue
        case let text as String: return text
        default: throw fail("'\(what)' must be a number, a string or true/false")
        }
    }

    /// `streams` or `methods`: a mapping of names to options, or (with `bareKey`) a list of
    /// names, each meaning {bareKey: name}; in the file's order for a list, by name for a mapping.
    private static func named(
        _ value: Any?, _ what: String, _ fail: (String) -> ToolError, bareKey: String? = nil
    ) throws -> [(name: String, options: [(key: String, value: String)])] {
        if let bareKey, let names = value as? [Any] {
            return try names.map { item in
                guard let name = item as? String, !name.isEmpty else { throw fail("'\(what)' lists something that is not a name") }
                return (name, [(bareKey, name)])
            }
        }
        guard let value else { return [] }
        guard let fields = value as? [String: Any] else {
            throw fail("'\(what)' must map names to options\(bareKey == nil ? "" : ", or list names")")
        }
        return try fields.keys.sorted().map { name in
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
                throw fail("'\(what)' name '\(name)' must be letters, digits, '-', '_' or '.': it names a folder")
            }
            var options = try Self.options(fields[name] as Any, "\(what).\(name)", fail)
            if let bareKey, !options.contains(where: { $0.key == bareKey }) { options.insert((bareKey, name), at: 0) }
            return (name, options)
        }
    }

    /// Every combination of the grid's values, keys in name order (one empty combination
    /// without a grid).
    private static func grid(
        _ value: Any?, _ fail: (String) -> ToolError, what: String = "grid"
    ) throws -> [[(key: String, value: String)]] {
        guard let value else { return [[]] }
        guard let fields = value as? [String: Any] else { throw fail("'\(what)' must map option names to lists of values") }
        var combinations: [[(key: String, value: String)]] = [[]]
        for key in fields.keys.sorted() {
            guard let values = fields[key] as? [Any], !values.isEmpty else {
                throw fail("'\(what).\(key)' must be a non-empty list of values")
            }
            let texts = try values.map { try text($0, "\(what).\(key)", fail) }
            combinations = combinations.flatMap { combination in texts.map { combination + [(key, $0)] } }
        }
        return combinations
    }

    private static func seeds(_ value: Any?, _ what: String, _ fail: (String) -> ToolError) throws -> [Int] {
        guard let value else { return [0] }
        guard let list = value as? [Any], !list.isEmpty, list.allSatisfy({ ($0 as? Int).map { $0 >= 0 } ?? false }) else {
            throw fail("'\(what)' must be a non-empty list of whole numbers >= 0, e.g. [0, 1, 2]")
        }
        let seeds = list.compactMap { $0 as? Int }
        guard Set(seeds).count == seeds.count else { throw fail("'\(what)' names a seed twice; list each once") }
        return seeds
    }

    /// One of `parts`: the streams and methods it takes (names of the plan's), its grid and seeds.
    private struct Part {
        var streams: Set<String>
        var methods: Set<String>
        var grid: [[(key: String, value: String)]]
        var seeds: [Int]
    }

    /// `parts`, or (without it) one part of every stream and method with the plan's grid and seeds.
    private static func parts(
        _ value: Any?, streams: [String], methods: [String], grid: [[(key: String, value: String)]], seeds: [Int],
        _ fail: (String) -> ToolError
    ) throws -> [Part] {
        guard let value else { return [Part(streams: Set(streams), methods: Set(methods), grid: grid, seeds: seeds)] }
        guard let list = value as? [Any], !list.isEmpty else {
            throw fail("'parts' must be a non-empty list of {streams, methods, grid, seeds}")
        }
        return try list.enumerated().map { number, item in
            let what = "parts[\(number)]"
            guard let fields = item as? [String: Any] else { throw fail("'\(what)' must be a mapping of streams, methods, grid, seeds") }
            if let unknown = fields.keys.sorted().first(where: { !partKeys.contains($0) }) {
                throw fail("'\(what)' has unknown key '\(unknown)'; a part has \(partKeys.sorted().joined(separator: ", "))")
            }
            func names(_ key: String, _ known: [String]) throws -> Set<String> {
                guard let value = fields[key] else { return Set(known) }
                guard let list = value as? [String], !list.isEmpty else {
                    throw fail("'\(what).\(key)' must be a non-empty list of names of the plan's \(key)")
                }
                if let unknown = list.first(where: { !known.contains($0) }) {
                    throw fail("'\(what).\(key)' names '\(unknown)', which is not one of the plan's \(key) (\(known.joined(separator: ", ")))")
                }
                return Set(list)
            }
            return Part(
                streams: try names("streams", streams), methods: try names("methods", methods),
                grid: fields["grid"] == nil ? grid : try Self.grid(fields["grid"], fail, what: "\(what).grid"),
                seeds: fields["seeds"] == nil ? seeds : try Self.seeds(fields["seeds"], "\(what).seeds", fail))
        }
    }

    /// A variant's folder name: characters other than letters, digits, '-', '_' and '.' as '-'.
    static func folderName(_ variant: String) -> String {
        String(variant.map { $0.isLetter || $0.isNumber || "-_.".contains($0) ? $0 : "-" })
    }

    /// The runs as `OUTPUT/sweep.json` records them for `segttt merge`: index, stream,
    /// variant, seed and folder (relative to the output root) of each.
    func writeManifest() throws {
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let records: [[String: Any]] = runs.map {
            [
                "index": $0.index, "stream": $0.stream, "variant": $0.variant, "seed": $0.seed,
                "folder": String($0.folder.path.dropFirst(output.path.count + 1)),
            ]
        }
        let data = try JSONSerialization.data(
            withJSONObject: ["plan": file.path, "runs": records], options: [.prettyPrinted, .sortedKeys])
        try data.write(to: output.appendingPathComponent("sweep.json"), options: .atomic)
    }
}
