import ArgumentParser
import Foundation
import SegTTT
import SegTTTReports
import Torch

/// `segttt demo`: the built-in default. A small ESPNet trained on the daylight style of the
/// built-in synthetic streets (shipped as a resource; `segttt train` reproduces it, see
/// `Train`) meets five shifted styles; the methods of `Methods.defaultComparison` adapt
/// along each stream with the settings of `--preset` (by default the recommended ones:
/// published, OCL with its safeguards), and the mIoU of each is measured and printed side by
/// side. Needs nothing but the repository.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Adapt a built-in model to built-in shifted streets and compare the methods (no files needed).")

    @Option(help: "Frames per target stream.")
    var frames: Int = 60

    @Option(help: "Comma-separated target styles (\(StreetStyle.targets.map(\.rawValue).joined(separator: ", "))).")
    var styles: String = StreetStyle.targets.map(\.rawValue).joined(separator: ",")

    @Option(help: "Comma-separated methods (\(Methods.validNames)).")
    var methods: String = Methods.defaultComparison.map(\.rawValue).joined(separator: ",")

    @Option(help: "Settings to start from: \(ConfigurationPreset.choices).")
    var preset: ConfigurationPreset = .recommended

    @Flag(help: "Train the source model here (about 3 minutes on 2 cores) instead of using the shipped one.")
    var train = false

    @Option(help: "libtorch CPU threads (default: all cores).")
    var threads: Int?

    @Option(help: "Folder for the results (replaced).")
    var output: String = "out/demo"

    /// The shipped source model.
    static var shippedModel: URL? { Bundle.module.url(forResource: "synthetic-espnet", withExtension: "safetensors") }

    func run() throws {
        let names = try Compare.parseMethods(methods)
        let targets = try styles.split(separator: ",").map { name -> StreetStyle in
            guard let style = StreetStyle(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                throw ToolError("unknown style '\(name)' in --styles; use \(StreetStyle.validNames)")
            }
            return style
        }
        guard frames >= 1 else { throw ToolError("--frames \(frames): give at least 1") }
        if let threads {
            let range = RunSettings.threadRange
            guard range.contains(threads) else {
                throw ToolError("--threads \(threads): give \(range.lowerBound) to \(range.upperBound)")
            }
            Runtime.numThreads = threads
        }
        let folder = URL(fileURLWithPath: output)
        try OutputFolder.prepare(folder, flag: "--output")
        let started = Date()

        let checkpoint = try sourceModel(in: folder)
        print("source model: \(checkpoint.path)")
        print("streams: \(frames) frames of each style (unseen scenes, seed 2); methods with the \(preset) preset\n")
        var table: [[Double]] = []
        for style in targets {
            var row: [Double] = []
            var curves: [LinePlot.Series] = []
            for name in names {
                var inputs = OptionInputs()
                for (key, value) in [
                    ("model", ESPNetFamily().name), ("checkpoint", checkpoint.path),
                    ("dataset", "synthetic:\(style.rawValue):\(frames):2"), ("method", name), ("preset", preset.rawValue),
                ] {
                    inputs.append(key, .text(value))
                }
                if let threads { inputs.append("threads", .text(String(threads))) }
                // Only the demo's own run folders are replaced, never the rest of --output.
                let runFolder = folder.appendingPathComponent(style.rawValue).appendingPathComponent(name)
                try? FileManager.default.removeItem(at: runFolder)
                let job = try AdaptationJob(configuration: try RunConfiguration(inputs), output: runFolder)
                job.printsClassTable = false
                job.showsProgress = false
                job.savesOnSignal = false
                let (metrics, curve) = try job.run(resume: false)
                row.append(metrics.meanIoU)
                curves.append(.init(name: name, points: curve))
                let label = (style.rawValue + " " + name).padding(toLength: 18, withPad: " ", startingAt: 0)
                print(label + String(format: "mIoU %5.1f   %.3f s/frame", metrics.meanIoU, metrics.secondsPerFrame))
            }
            table.append(row)
            try LinePlot(
                title: "running mIoU, synthetic \(style.rawValue)", xLabel: "frame", yLabel: "running mIoU (%)",
                series: curves, yRange: 0...100
            ).write(to: folder.appendingPathComponent("\(style.rawValue).svg"))
        }
        let summary = Self.summary(styles: targets, methods: names, miou: table)
        print("\nmIoU (%) by target style and method:\n" + summary.terminal())
        try ("# segttt demo\n\nmIoU (%) by target style and method, \(frames) frames each.\n\n" + summary.markdown() + "\n")
            .write(to: folder.appendingPathComponent("demo.md"), atomically: true, encoding: .utf8)
        print(
            String(format: "\nfinished in %.0f s; table in %@/demo.md, curves in %@/<style>.svg", Date().timeIntervalSince(started), output, output))
    }

    /// The shipped model, or with --train one trained here and saved in the output folder.
    private func sourceModel(in folder: URL) throws -> URL {
        if !train, let shipped = Self.shippedModel { return shipped }
        let url = folder.appendingPathComponent("source.safetensors")
        var command = Train()
        command.dataset = "synthetic:source:400:1"
        command.holdout = "synthetic:source:100:2"
        command.espnetP = 1
        command.espnetQ = 1
        command.iterations = 600
        command.lr = 0.1
        command.threads = threads
        command.output = url.path
        try command.run()
        return url
    }

    /// Rows: styles and their mean; columns: methods.
    static func summary(styles: [StreetStyle], methods: [String], miou: [[Double]]) -> TextTable {
        var rows = zip(styles, miou).map { style, row in [style.rawValue] + row.map { String(format: "%.1f", $0) } }
        let means = methods.indices.map { column in miou.map { $0[column] }.reduce(0, +) / Double(miou.count) }
        rows.append(["mean"] + means.map { String(format: "%.1f", $0) })
        return TextTable(header: ["style"] + methods, rows: rows)
    }
}
