import ArgumentParser
import Foundation
import SegTTT
import SegTTTReports

/// `segttt compare`: several methods along the same stream, one table and one plot.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run several methods along the same stream and compare them.",
        discussion: """
            Each method runs with the settings of --preset (by default recommended: the \
            published ones, OCL with its safeguards), changed by the method options given \
            (they apply to every method that uses them); its files go to OUTPUT/METHOD/ as \
            with `segttt adapt`. The table goes to the terminal and OUTPUT/comparison.md, the \
            running-mIoU curves to OUTPUT/running-miou.svg. A stream of several domains (a \
            corruption schedule) or rounds also gets one table per domain and per round.

            """ + "\n" + RunArguments.help)

    @Option(help: "Comma-separated methods (\(Methods.validNames)).")
    var methods: String = Methods.defaultComparison.map(\.rawValue).joined(separator: ",")

    @OptionGroup var options: RunArguments

    @Option(help: "Folder for the results.")
    var output: String = "out/compare"

    @Flag(help: "Continue the runs saved in --output (finished ones are reported again).")
    var resume = false

    func run() throws {
        try Interrupted.exitingOnSignal(compare)
    }

    private func compare() throws {
        let names = try Self.parseMethods(methods)
        let folder = URL(fileURLWithPath: output)
        var results: [(name: String, metrics: RunMetrics, curve: [(x: Double, y: Double)])] = []
        for name in names {
            var method = OptionInputs()
            method.append("method", .text(name))
            let configuration = try options.configuration(method)
            let job = try AdaptationJob(configuration: configuration, output: folder.appendingPathComponent(name))
            job.printsClassTable = false
            let resumeThis = resume && RunState(folder: job.output).exists
            let (metrics, curve) = try job.run(resume: resumeThis)
            results.append((name, metrics, curve))
        }
        let table = Self.table(results.map { ($0.name, $0.metrics) })
        print(table.terminal())
        var markdown = table.markdown() + "\n"
        for (title, parts) in [("domain", \RunMetrics.domains), ("round", \RunMetrics.rounds)] {
            guard let segments = Self.segmentTable(results.map { ($0.name, $0.metrics[keyPath: parts]) }, title: title)
            else { continue }
            print("\nmIoU (%) per \(title):\n" + segments.terminal())
            markdown += "\n## mIoU (%) per \(title)\n\n" + segments.markdown() + "\n"
        }
        let dataset = results.first?.metrics.dataset ?? "the stream"
        try ("# \(dataset)\n\n" + markdown).write(
            to: folder.appendingPathComponent("comparison.md"), atomically: true, encoding: .utf8)
        try LinePlot(
            title: "running mIoU on \(dataset)", xLabel: "frame", yLabel: "running mIoU (%)",
            series: results.map { .init(name: $0.name, points: $0.curve) }
        ).write(to: folder.appendingPathComponent("running-miou.svg"))
        print("results in \(output)/ (comparison.md, running-miou.svg, one folder per method)")
    }

    /// "source,ocl" -> ["source", "ocl"], each a registered method named once.
    ///
    /// - Throws: `ValidationError` (exit 64) for an unknown, repeated or missing name.
    static func parseMethods(_ text: String) throws -> [String] {
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !names.isEmpty else { throw ValidationError("--methods is empty; list some of \(Methods.validNames)") }
        for name in names where Methods.named(name) == nil {
            throw ValidationError("--methods: unknown method '\(name)'; use \(Methods.validNames)")
        }
        if let repeated = names.first(where: { name in names.filter { $0 == name }.count > 1 }) {
            throw ValidationError("--methods names \(repeated) twice; list each method once")
        }
        return names
    }

    /// One row per method, one column per domain or round (nil when no run has segments).
    static func segmentTable(_ rows: [(String, [RunMetrics.Segment]?)], title: String) -> TextTable? {
        guard let first = rows.compactMap(\.1).first else { return nil }
        return TextTable(
            header: ["method"] + first.map(\.name),
            rows: rows.map { name, segments in
                [name] + (segments ?? []).map { String(format: "%.2f", $0.meanIoU) }
            })
    }

    /// One row per method: mIoU, pixel accuracy, mean class accuracy, fwIoU, time per frame.
    static func table(_ rows: [(String, RunMetrics)]) -> TextTable {
        TextTable(
            header: ["method", "mIoU", "pixel acc.", "mean acc.", "fwIoU", "s/frame", "frames"],
            rows: rows.map { name, m in
                [name] + [m.meanIoU, m.pixelAccuracy, m.meanClassAccuracy, m.frequencyWeightedIoU].map {
                    String(format: "%.2f", $0)
                } + [String(format: "%.3f", m.secondsPerFrame), String(m.frames)]
            })
    }
}
