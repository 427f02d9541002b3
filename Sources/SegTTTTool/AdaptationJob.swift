import Foundation
import SegTTT
import SegTTTReports
import Torch

/// One method run along one stream, writing its results into an output folder:
///
///     config.json          the effective configuration (accepted back by --config)
///     frames.csv           one row per frame: loss terms, frame mIoU, running mIoU, seconds
///     metrics.json         the stream's metrics, per-class IoU, confusion matrix, timing
///     running-miou.svg     running mIoU along the stream
///     predictions/*.png    each prediction in the dataset's class colours (black: no class)
///     overlays/*.png       predictions over their images, when asked
///     diagnostics.jsonl    per frame: entropy, class histogram, weight drift, gradient norms
///                          (`AdaptationDiagnostics`), when asked
///     state.safetensors    the run's whole state, saved every `saveEvery` frames, at the end,
///                          and on SIGINT or SIGTERM (`RunState`, `InterruptionWatch`)
///     state.previous.safetensors  the state saved before it
///
/// A run stopped at any point (even by SIGKILL) resumes from its newest readable state: the
/// frame log is cut back to the saved position and the run ends with the numbers of an
/// uninterrupted one.
final class AdaptationJob {
    let plan: RunPlan
    let output: URL
    /// Print the per-class table at the end.
    var printsClassTable = true
    /// Draw a progress bar on standard error.
    var showsProgress = true
    /// On SIGINT or SIGTERM, save the state and stop with `Interrupted` after the frame in
    /// hand; when false, the signals end the process as usual (runs that are not resumed).
    var savesOnSignal = true

    var configURL: URL { output.appendingPathComponent("config.json") }
    var framesURL: URL { output.appendingPathComponent("frames.csv") }
    var metricsURL: URL { output.appendingPathComponent("metrics.json") }
    var plotURL: URL { output.appendingPathComponent("running-miou.svg") }
    var diagnosticsURL: URL { output.appendingPathComponent("diagnostics.jsonl") }

    init(configuration: RunConfiguration, output: URL) throws {
        self.plan = try RunPlan(configuration)
        self.output = output
    }

    /// The configuration as run, with the paths made absolute: what config.json holds.
    var effectiveConfiguration: RunConfiguration {
        var c = plan.configuration
        c.settings.model = plan.family.name
        c.settings.checkpoint = plan.checkpoint.path
        c.settings.card = plan.cardFile?.path
        c.settings.device = plan.device.description
        return c
    }

    /// Runs the stream to its end (or `limit`), resuming from the saved state when `resume`.
    ///
    /// - Returns: the metrics written to metrics.json, and the running-mIoU curve.
    @discardableResult
    func run(resume: Bool) throws -> (metrics: RunMetrics, curve: [(x: Double, y: Double)]) {
        let settings = plan.settings
        Runtime.configure(Runtime.Settings(threads: settings.threads, flushDenormals: settings.flushDenormals))
        let effective = effectiveConfiguration
        let state = RunState(folder: output)
        let resumes = try checkOutput(resume: resume, state: state, effective: effective)

        let dataset = try plan.openStream()
        let model = try plan.loadModel()
        let mapping = try ClassMapping.resolve(
            modelClasses: model.card.classNames, numOutputs: model.card.numOutputs,
            datasetClasses: dataset.classNames, classMapFile: plan.classMap)
        let name = plan.method.name
        let method = try plan.method.make(model: model, config: plan.config)
        let runner = try Runner(
            method: method, methodName: name, dataset: dataset, mapping: mapping, mode: settings.streamMode)
        if resumes, let note = try state.resume(runner) { print(note) }
        try writeOutputFolder(effective: effective)
        let diagnostics = try settings.diagnostics ? DiagnosticsLog(url: diagnosticsURL, method: method, resumeAt: resumes ? runner.position : nil) : nil

        let end = Swift.min(settings.limit ?? dataset.count, dataset.count)
        let log = try FrameLog(url: framesURL, lossNames: plan.method.lossTerms, resumeAt: resumes ? runner.position : nil)
        defer { log.close() }
        let palette = ClassPalette.colours(for: dataset.classNames)
        let progress = showsProgress ? ProgressBar(total: end, label: name, startAt: runner.position) : nil
        let interruption = savesOnSignal ? InterruptionWatch() : nil
        var savedPosition = resumes ? runner.position : -1
        do {
            try runner.run(
                until: end, skipBadFrames: settings.skipBadFrames,
                onOutput: { output in
                    try self.writePrediction(output.prediction, of: output.sample, palette: palette)
                    try diagnostics?.append(frame: output.index, output.result)
                },
                onFrame: { record in
                    let running = runner.matrix.meanIoU
                    try log.append(record, runningIoU: running.isNaN ? nil : running)
                    if (record.index + 1) % settings.saveEvery == 0 {
                        try state.save(runner)
                        savedPosition = runner.position
                    }
                    progress?.update(done: record.index + 1, fields: Self.progressFields(running, record))
                    if let signal = interruption?.receivedSignal {
                        if savedPosition != runner.position { try state.save(runner) }
                        progress?.finish(fields: Self.progressFields(running, record))
                        throw Interrupted(signal: signal, output: self.output, frame: runner.position)
                    }
                })
        } catch let error as TorchError where MemoryCap.isAllocationFailure(error.message) {
            let frame = (dataset as? FrameNaming)?.frameName(at: runner.position) ?? "frame \(runner.position)"
            throw ToolError(
                "frame '\(frame)' (index \(runner.position)) needs more memory than this machine has free; use smaller "
                    + "frames or a machine with more memory (the frames before it are saved: --resume continues)")
        }
        if savedPosition != runner.position { try state.save(runner) }
        progress?.finish(fields: Self.progressFields(runner.matrix.meanIoU, nil))

        let rows = try FrameLog.read(framesURL)
        let seconds = rows.compactMap { $0["seconds"].flatMap(Double.init) }
        let curve = rows.compactMap { row -> (x: Double, y: Double)? in
            guard let frame = row["frame"].flatMap(Double.init), let miou = row["running_miou"].flatMap(Double.init)
            else { return nil }
            return (frame + 1, miou)
        }
        let metrics = RunMetrics(
            method: name, model: model.card.name, checkpoint: plan.checkpoint.path,
            dataset: dataset.name, frames: runner.position, matrix: runner.matrix, classNames: dataset.classNames,
            secondsPerFrame: seconds.isEmpty ? 0 : seconds.reduce(0, +) / Double(seconds.count),
            nonFiniteLossFrames: runner.nonFiniteFrames,
            skippedFrames: runner.skippedFrames.map(\.description),
            domains: runner.domainMatrices.count > 1
                ? runner.domainMatrices.map { RunMetrics.Segment(name: $0.domain, matrix: $0.matrix) } : nil,
            rounds: runner.roundMatrices.count > 1
                ? runner.roundMatrices.enumerated().map { RunMetrics.Segment(name: "round \($0.offset + 1)", matrix: $0.element) }
                : nil)
        try metrics.write(to: metricsURL)
        try LinePlot(
            title: "\(name) on \(dataset.name)", xLabel: "frame", yLabel: "running mIoU (%)",
            series: [.init(name: name, points: curve)]
        ).write(to: plotURL)
        if printsClassTable {
            print(Self.classTable(metrics))
            for (title, segments) in [("domain", metrics.domains), ("round", metrics.rounds)] {
                guard let segments else { continue }
                let rows = segments.map { [$0.name, String(format: "%.2f", $0.meanIoU)] }
                print("\nmIoU (%) per \(title):\n" + TextTable(header: [title, "mIoU"], rows: rows).terminal())
            }
        }
        if !runner.nonFiniteFrames.isEmpty {
            print("\(runner.nonFiniteFrames.count) frame(s) had a non-finite loss; their weights were left as they were")
        }
        if !runner.skippedFrames.isEmpty { print("skipped \(runner.skippedFrames.count) unreadable frame(s)") }
        return (metrics, curve)
    }

    /// The configuration saved in the folder. Runs saved before presets existed ran the
    /// published settings.
    private func savedConfiguration() throws -> RunConfiguration {
        var inputs = try RunConfiguration.read(configURL)
        if inputs["preset"] == nil { inputs.append("preset", .text(ConfigurationPreset.published.rawValue)) }
        return try RunConfiguration(inputs)
    }

    /// Checks the folder against `resume` before anything is written to it.
    ///
    /// - Returns: whether the run continues a saved state: false for a `resume` of a folder
    ///   with no saved state, which starts the stream from its first frame (and says so).
    private func checkOutput(resume: Bool, state: RunState, effective: RunConfiguration) throws -> Bool {
        let files = FileManager.default
        try OutputFolder.refuseFile(output, flag: "--output")
        guard resume else {
            if state.exists {
                throw ToolError(
                    "\(output.path) already holds a run (state.safetensors); pass --resume to continue it, or choose another --output")
            }
            return false
        }
        guard state.exists else {
            print("note: \(output.path) holds no saved state; the run starts from the first frame")
            return false
        }
        guard files.fileExists(atPath: configURL.path) else { return true }
        // Resolved again, so that options added since the run was saved take their defaults.
        let saved: AdaptationJob
        do {
            saved = try AdaptationJob(configuration: try savedConfiguration(), output: output)
        } catch {
            throw ToolError(
                "\(configURL.path) cannot be read back (\(error)); it records the saved run's options, "
                    + "so resume is refused: restore the file, or delete the folder's state files to start over")
        }
        let (before, now) = (Self.text(saved.effectiveConfiguration), Self.text(effective))
        let differing = RunConfiguration.resultKeys.filter { before[$0] != now[$0] }
        guard differing.isEmpty else {
            throw ToolError(
                "\(configURL.path) was written by a run with other \(differing.joined(separator: ", ")); "
                    + "resume with the same options or choose another --output")
        }
        return true
    }

    /// Creates the output folders, removes what an interrupted write left there, and writes
    /// the effective configuration.
    private func writeOutputFolder(effective: RunConfiguration) throws {
        var folders = [output]
        if plan.settings.predictions { folders.append(output.appendingPathComponent("predictions")) }
        if plan.settings.overlays { folders.append(output.appendingPathComponent("overlays")) }
        for folder in folders {
            try OutputFolder.prepare(folder, flag: "--output")
            OutputFolder.removeInterruptedWrites(in: folder)
        }
        try effective.write(to: configURL)
    }

    /// The configuration's values as text, by key.
    private static func text(_ configuration: RunConfiguration) -> [String: String] {
        configuration.values.mapValues { "\($0)" }
    }

    private func writePrediction(_ prediction: Tensor, of sample: Sample, palette: [[UInt8]]) throws {
        guard plan.settings.predictions || plan.settings.overlays else { return }
        let name = sample.name.replacingOccurrences(of: "/", with: "_") + ".png"
        let colours = try PredictionImage.colourize(prediction, palette: palette)
        if plan.settings.predictions {
            try ImageIO.writePNG(colours, to: output.appendingPathComponent("predictions").appendingPathComponent(name))
        }
        if plan.settings.overlays {
            try ImageIO.writePNG(
                PredictionImage.overlay(sample.image, colours: colours),
                to: output.appendingPathComponent("overlays").appendingPathComponent(name))
        }
    }

    private static func progressFields(_ running: Double, _ record: FrameRecord?) -> [(String, String)] {
        var fields = [("mIoU", running.isNaN ? "-" : String(format: "%.1f", running * 100))]
        if let loss = record?.losses["loss"] { fields.append(("loss", String(format: "%.4f", loss))) }
        return fields
    }

    /// Per-class IoU and the stream's metrics, as a terminal table.
    static func classTable(_ metrics: RunMetrics) -> String {
        var rows = metrics.classes.map { [$0.name, $0.iou.map { String(format: "%.2f", $0) } ?? "-"] }
        rows.append(["mIoU", String(format: "%.2f", metrics.meanIoU)])
        let table = TextTable(header: ["class", "IoU (%)"], rows: rows).terminal()
        return table
            + String(
                format: "\npixel accuracy %.2f  mean class accuracy %.2f  fwIoU %.2f  %.3f s/frame  (%d frames)",
                metrics.pixelAccuracy, metrics.meanClassAccuracy, metrics.frequencyWeightedIoU,
                metrics.secondsPerFrame, metrics.frames)
    }
}
