import ArgumentParser
import Foundation
import SegTTT
import SegTTTReports
import Torch

/// `segttt train`: supervised training of a source model (`trainSource`), saved as safetensors
/// with its model card, and its mIoU on held-out frames.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a source model on a labelled dataset and report its held-out mIoU.",
        discussion: """
            SGD with momentum under DeepLab's poly schedule, random scale (0.75-1.5), crop \
            and left-right flip. The model is saved as safetensors carrying its class names \
            and input normalisation, so `segttt adapt --checkpoint` reads it back as it was. \
            The built-in demo model was made with:
              segttt train --dataset synthetic:source:400:1 --espnet-p 1 --espnet-q 1 \\
                --iterations 600 --lr 0.1 --threads 1 --holdout synthetic:source:100:2 \\
                --output Sources/SegTTTTool/Resources/synthetic-espnet.safetensors
            """)

    @Option(help: "Network family: \(ModelFamilies.all.filter { $0.name != "torchscript" }.map(\.name).joined(separator: ", ")).")
    var model: String = "espnet"

    @Option(help: "Start from these weights instead of a fresh initialisation.")
    var checkpoint: String?

    @Option(help: "ESPNet: blocks at level 2.")
    var espnetP: Int = 2

    @Option(help: "ESPNet: blocks at level 3.")
    var espnetQ: Int = 8

    @Option(help: "DeepLabV2 backbone depth: 18, 34, 50 or 101.")
    var backbone: Int = 101

    @Option(help: "Labelled training data, KIND:PATH (\(DatasetSpec.kinds)) or a folder with classes.json.")
    var dataset: String

    @Option(help: "Held-out data for the final mIoU; default: the last --holdout-fraction of --dataset, kept out of training.")
    var holdout: String?

    @Option(help: "Fraction of --dataset held out when --holdout is not given.")
    var holdoutFraction: Double = 0.1

    @Option(help: "SGD steps.") var iterations: Int = 1000
    @Option(help: "Frames per step.") var batchSize: Int = 8
    @Option(help: "Initial learning rate (poly decay, power 0.9).") var lr: Double = 0.01
    @Option(help: "SGD momentum.") var momentum: Double = 0.9
    @Option(help: "Weight decay.") var weightDecay: Double = 5e-4
    @Option(help: "Crop size HEIGHTxWIDTH (default: the frames' size).") var crop: String?
    @Option(help: "Seed of the initialisation, frame order and augmentations.") var seed: UInt64 = 0
    @Option(help: "libtorch CPU threads (default: all cores).") var threads: Int?

    @Option(help: "Where to save the trained model (.safetensors).")
    var output: String = "out/model.safetensors"

    /// The size options' ranges, checked before anything is read or trained: outside them
    /// a network or a batch would not fit in memory, or a range in the network would be empty.
    private func checkSizes() throws {
        var bounds: [(flag: String, value: Int, range: ClosedRange<Int>)] = [
            ("--espnet-p", espnetP, 1...16), ("--espnet-q", espnetQ, 1...16),
            ("--iterations", iterations, 1...10_000_000), ("--batch-size", batchSize, 1...64),
        ]
        if let threads { bounds.append(("--threads", threads, RunSettings.threadRange)) }
        for bound in bounds where !bound.range.contains(bound.value) {
            throw ToolError("\(bound.flag) \(bound.value): give \(bound.range.lowerBound) to \(bound.range.upperBound)")
        }
    }

    func run() throws {
        try checkSizes()
        let url = URL(fileURLWithPath: output)
        try checkOutputFile(url)
        Runtime.configure(Runtime.Settings(threads: threads))
        guard let family = ModelFamilies.named(model) else {
            throw ToolError("unknown --model '\(model)'; use one of \(ModelFamilies.validNames)")
        }
        var training = try DatasetSpec(dataset).open()
        let validation: any SegmentationDataset
        if let holdout {
            validation = try DatasetSpec(holdout).open()
        } else {
            guard holdoutFraction > 0, holdoutFraction < 1 else {
                throw ToolError("--holdout-fraction \(holdoutFraction): give a value between 0 and 1, or pass --holdout")
            }
            let held = Swift.max(1, Int((Double(training.count) * holdoutFraction).rounded()))
            guard training.count > held else {
                throw ToolError("--dataset \(dataset) has \(training.count) frame(s), too few to hold \(held) out")
            }
            validation = DatasetSlice(training, range: (training.count - held)..<training.count)
            training = DatasetSlice(training, range: 0..<(training.count - held))
        }
        // Synthetic frames are rendered, not read: render each once instead of once per epoch.
        if dataset.hasPrefix("synthetic:") { training = try InMemoryDataset(training) }

        let network = try makeModel(family, classNames: training.classNames)
        let config = SourceTrainingConfig(
            iterations: iterations, batchSize: batchSize, learningRate: lr, momentum: momentum,
            weightDecay: weightDecay, seed: seed, cropSize: try crop.map(Self.parseSize))
        print("training \(network.card.name) on \(training.name) (\(training.count) frames), \(iterations) steps")
        let progress = ProgressBar(total: iterations, label: "train", unit: "step")
        var lastLoss = Double.nan
        let started = Date()
        try trainSource(network, on: training, config: config) { iteration, loss in
            lastLoss = loss
            progress.update(done: iteration + 1, fields: [("loss", String(format: "%.4f", loss))])
        }
        progress.finish(fields: [("loss", String(format: "%.4f", lastLoss))])
        try ModelFile.save(network, family: family, to: url)
        let mapping = try ClassMapping.resolve(
            modelClasses: network.card.classNames, numOutputs: network.card.numOutputs,
            datasetClasses: validation.classNames)
        let matrix = try evaluateFrozen(network, on: validation, mapping: mapping)
        print(
            String(
                format: "trained in %.0f s; held-out mIoU %.2f on %@ (%d frames); saved %@",
                Date().timeIntervalSince(started), matrix.meanIoU * 100, validation.name, validation.count, output))
    }

    /// Checks, before training, that the trained model can be written to `url`: its folder is
    /// created (or exists) and writable, and `url` is not a folder.
    private func checkOutputFile(_ url: URL) throws {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder), isFolder.boolValue {
            throw ToolError("--output \(url.path) is a folder; give the file to write, e.g. \(url.path)/model.safetensors")
        }
        try OutputFolder.prepare(url.deletingLastPathComponent(), flag: "--output")
    }

    private func makeModel(_ family: any ModelFamily, classNames: [String]) throws -> any SegmentationModel {
        guard !(family is TorchScriptFamily) else {
            throw ToolError("--model torchscript is trained in PyTorch, where its code lives; segttt adapts it")
        }
        if let checkpoint { return try ModelFile.load(URL(fileURLWithPath: checkpoint), family: family) }
        guard ResNetDepth(rawValue: backbone) != nil else { throw ToolError("--backbone \(backbone): use 18, 34, 50 or 101") }
        let architecture = ["p": espnetP, "q": espnetQ, "backbone": backbone]
        guard let model = try family.fresh(classNames: classNames, architecture: architecture, generator: Generator(seed: seed))
        else {
            throw ToolError("--model \(family.name) is trained in PyTorch, not by segttt train; export it and adapt it")
        }
        return model
    }

    /// "96x128" -> Pair(96, 128).
    static func parseSize(_ text: String) throws -> Pair {
        let parts = text.lowercased().split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts.allSatisfy({ $0 > 0 }) else {
            throw ToolError("--crop \(text): write HEIGHTxWIDTH, e.g. 512x1024")
        }
        return Pair(parts[0], parts[1])
    }
}
