import ArgumentParser
import Foundation
import SegTTT
import SegTTTReports

/// `segttt merge ROOT`: the results of a sweep's runs (ROOT/sweep.json) as one table and one
/// plot: per stream and variant the mean mIoU over the seeds that finished, their spread and
/// the gap to a baseline variant; runs not finished are listed with what state they are in.
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Gather a sweep's results into one table and one plot.",
        discussion: """
            ROOT is a plan's output folder. The table goes to the terminal and ROOT/merged.md, \
            the plot (mean mIoU per stream, one line per variant) to ROOT/merged.svg. sd is the \
            sample standard deviation over seeds; gap is the mean minus the baseline's on the \
            same stream. Runs still going, stopped, failed or not started are listed below \
            the table and left out of it.
            """)

    @Argument(help: "The sweep's output root (the plan's `output`).")
    var root: String

    @Option(help: "The variant the gaps are measured from (default: the first of the plan).")
    var baseline: String?

    /// What a run's folder says of it.
    enum Status: Equatable {
        case done(RunMetrics)
        case failed(String)
        case stopped
        case notStarted

        static func == (a: Status, b: Status) -> Bool {
            switch (a, b) {
            case (.done(let x), .done(let y)): return x == y
            case (.failed(let x), .failed(let y)): return x == y
            case (.stopped, .stopped), (.notStarted, .notStarted): return true
            default: return false
            }
        }
    }

    struct Entry {
        var index: Int
        var stream: String
        var variant: String
        var seed: Int
        var folder: URL
        var status: Status
    }

    func run() throws {
        let folder = URL(fileURLWithPath: root)
        let entries = try Self.read(folder)
        let variants = entries.map(\.variant).uniqued()
        let base = baseline ?? variants.first ?? ""
        guard variants.contains(base) else {
            throw ValidationError("--baseline \(base): not a variant of this sweep; use one of \(variants.joined(separator: ", "))")
        }
        let table = Self.table(entries, baseline: base)
        let pending = Self.pending(entries)
        print(table.terminal())
        if !pending.isEmpty { print("\nnot in the table:\n" + pending.map { "  " + $0 }.joined(separator: "\n")) }
        var markdown = "# Sweep \(folder.path)\n\nmIoU (%) over seeds; gap: mean minus \(base)'s on the same stream.\n\n"
        markdown += table.markdown() + "\n"
        if !pending.isEmpty { markdown += "\n## Not in the table\n\n" + pending.map { "- " + $0 }.joined(separator: "\n") + "\n" }
        try markdown.write(to: folder.appendingPathComponent("merged.md"), atomically: true, encoding: .utf8)
        try Self.plot(entries).write(to: folder.appendingPathComponent("merged.svg"))
        print("\nwrote \(folder.path)/merged.md and merged.svg")
    }

    /// The runs of ROOT/sweep.json and the state of each.
    ///
    /// - Throws: `ToolError` when ROOT holds no readable sweep.json.
    static func read(_ root: URL) throws -> [Entry] {
        let manifest = root.appendingPathComponent("sweep.json")
        guard let data = FileManager.default.contents(atPath: manifest.path) else {
            throw ToolError("\(manifest.path): no such file; ROOT must be a plan's output folder (any `segttt sweep PLAN` writes it)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let runs = object["runs"] as? [[String: Any]]
        else { throw ToolError("\(manifest.path): not a sweep's list of runs; run `segttt sweep PLAN --list` to write it again") }
        return try runs.map { record in
            guard let index = record["index"] as? Int, let stream = record["stream"] as? String,
                let variant = record["variant"] as? String, let seed = record["seed"] as? Int,
                let path = record["folder"] as? String
            else { throw ToolError("\(manifest.path): a run lacks its index, stream, variant, seed or folder") }
            let folder = root.appendingPathComponent(path)
            return Entry(index: index, stream: stream, variant: variant, seed: seed, folder: folder, status: try status(of: folder))
        }
    }

    static func status(of folder: URL) throws -> Status {
        let files = FileManager.default
        let metrics = folder.appendingPathComponent("metrics.json")
        if files.fileExists(atPath: metrics.path) { return .done(try RunMetrics.read(metrics)) }
        let failure = folder.appendingPathComponent(Sweep.failureFile)
        if let text = try? String(contentsOf: failure, encoding: .utf8) {
            return .failed(text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        if RunState(folder: folder).exists || files.fileExists(atPath: folder.path) { return .stopped }
        return .notStarted
    }

    /// One row per stream and variant, in the plan's order.
    static func table(_ entries: [Entry], baseline: String) -> TextTable {
        func scores(_ stream: String, _ variant: String) -> [Double] {
            entries.filter { $0.stream == stream && $0.variant == variant }.compactMap {
                if case .done(let metrics) = $0.status { return metrics.meanIoU }
                return nil
            }
        }
        var rows: [[String]] = []
        for stream in entries.map(\.stream).uniqued() {
            let base = mean(scores(stream, baseline))
            for variant in entries.filter({ $0.stream == stream }).map(\.variant).uniqued() {
                let values = scores(stream, variant)
                let total = entries.filter { $0.stream == stream && $0.variant == variant }.count
                let m = mean(values)
                rows.append([
                    stream, variant, "\(values.count)/\(total)", format(m), values.count > 1 ? format(sd(values)) : "-",
                    values.isEmpty ? "-" : format(values.min()!) + "-" + format(values.max()!),
                    variant == baseline || m == nil || base == nil ? "-" : String(format: "%+.2f", m! - base!),
                ])
            }
        }
        return TextTable(
            header: ["stream", "variant", "runs", "mIoU", "sd", "range", "gap"], rows: rows,
            alignments: [.left, .left, .right, .right, .right, .right, .right])
    }

    /// The runs left out of the table, one line each.
    static func pending(_ entries: [Entry]) -> [String] {
        entries.compactMap { entry in
            let what: String
            switch entry.status {
            case .done: return nil
            case .failed(let message): what = "failed: \(message)"
            case .stopped: what = "started, not finished (running, or stopped: `segttt sweep PLAN --run \(entry.index)` resumes it)"
            case .notStarted: what = "not started"
            }
            return "run \(entry.index) (\(entry.stream), \(entry.variant), seed \(entry.seed)): \(what)"
        }
    }

    /// Mean mIoU per stream (x: the stream's number in the table's order), one line per variant.
    static func plot(_ entries: [Entry]) -> LinePlot {
        let streams = entries.map(\.stream).uniqued()
        let series = entries.map(\.variant).uniqued().map { variant in
            LinePlot.Series(
                name: variant,
                points: streams.enumerated().map { number, stream in
                    let values = entries.filter { $0.stream == stream && $0.variant == variant }.compactMap { entry -> Double? in
                        if case .done(let metrics) = entry.status { return metrics.meanIoU }
                        return nil
                    }
                    return (Double(number + 1), mean(values) ?? .nan)
                })
        }
        return LinePlot(
            title: "mean mIoU over seeds, streams " + streams.enumerated().map { "\($0.offset + 1) \($0.element)" }
                .joined(separator: ", "),
            xLabel: "stream", yLabel: "mIoU (%)", series: series)
    }

    private static func mean(_ values: [Double]) -> Double? {
        values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
    }

    private static func sd(_ values: [Double]) -> Double {
        let m = values.reduce(0, +) / Double(values.count)
        return (values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
    }

    private static func format(_ value: Double?) -> String { value.map { String(format: "%.2f", $0) } ?? "-" }
}

extension Array where Element: Hashable {
    /// The elements in order, each once.
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
