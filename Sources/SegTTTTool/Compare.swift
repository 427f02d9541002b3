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
            running-mIoU curves to OUTPUT/running-miou.svg.
            """)

    @Option(help: "Comma-separated methods (\(RunPlan.methodNames)).")
    var methods: String = "source,bn-prior,tent,ocl"

    @OptionGroup var options: RunArguments

    @Option(help: "Folder for the results.")
    var output: String = "out/compare"

    @Flag(help: "Continue the runs saved in --output (finished ones are reported again).")
    var resume = false

    func run() throws {
        let kinds = try Self.parseMethods(methods)
        let base = try options.configuration(method: nil)
        let folder = URL(fileURLWithPath: output)
        var results: [(kind: MethodKind, metrics: RunMetrics, curve: [(x: Double, y: Double)])] = []
        for kind in kinds {
            var configuration = base
            configuration.method = kind.rawValue
            let job = try AdaptationJob(configuration: configuration, output: folder.appendingPathComponent(kind.rawValue))
            job.printsClassTable = false
            let resumeThis = resume && FileManager.default.fileExists(atPath: job.stateURL.path)
            let (metrics, curve) = try job.run(resume: resumeThis)
            results.append((kind, metrics, curve))
        }
        let table = Self.table(results.map { ($0.kind.rawValue, $0.metrics) })
        print(table.terminal())
        let dataset = results.first?.metrics.dataset ?? "the stream"
        try ("# \(dataset)\n\n" + table.markdown() + "\n").write(
            to: folder.appendingPathComponent("comparison.md"), atomically: true, encoding: .utf8)
        try LinePlot(
            title: "running mIoU on \(dataset)", xLabel: "frame", yLabel: "running mIoU (%)",
            series: results.map { .init(name: $0.kind.rawValue, points: $0.curve) }
        ).write(to: folder.appendingPathComponent("running-miou.svg"))
        print("results in \(output)/ (comparison.md, running-miou.svg, one folder per method)")
    }

    /// "source,ocl" -> [.source, .ocl], with a clear error for an unknown name.
    static func parseMethods(_ text: String) throws -> [MethodKind] {
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !names.isEmpty else { throw ToolError("--methods is empty; list some of \(RunPlan.methodNames)") }
        return try names.map { name in
            guard let kind = MethodKind(rawValue: name) else {
                throw ToolError("unknown method '\(name)' in --methods; use \(RunPlan.methodNames)")
            }
            return kind
        }
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
