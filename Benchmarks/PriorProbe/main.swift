// What each BatchNorm prior does on every frame of a real stream, for studying label-free
// rules that choose it (docs/ADAPTATION.md). For every frame and every prior p (BatchNorm
// normalising with p * source + (1 - p) * frame statistics, one view, no step) it writes one
// JSON line: the input shift of every BatchNorm layer (`BatchNorm2d.inputShift`), label-free
// statistics of the prediction (mean entropy, mean top probability, mean log-sum-exp of the
// logits, the soft class marginal), the pixel agreement of every pair of priors' predictions,
// and the frame's confusion matrix against its label.
//
//     swift run -c release prior-probe --model espnet --checkpoint CKPT --dataset camvid-dusk:PATH \
//       [--card CARD] [--corruption NAME:SEVERITY] [--corruption-seed S] [--frame-step N] \
//       [--priors 1,0.85,...] [--threads T] --output FILE.jsonl
//
// Benchmarks/prior_rules.py reads the files and scores rules against the labels.
import Foundation
import SegTTT
import Torch
import TorchNN

struct ProbeArguments {
    var model = "espnet"
    var checkpoint = ""
    var card: String?
    var dataset = ""
    var corruption: String?
    var corruptionSeed: UInt64 = 0
    var frameStep = 1
    var priors: [Double] = [1, 0.95, 0.85, 0.7, 0.5, 0.3, 0.15, 0]
    var threads: Int?
    var output = ""

    init(_ arguments: [String]) throws {
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            guard let value = rest.popFirst() else { throw TorchError("\(flag) needs a value") }
            switch flag {
            case "--model": model = value
            case "--checkpoint": checkpoint = value
            case "--card": card = value
            case "--dataset": dataset = value
            case "--corruption": corruption = value
            case "--corruption-seed": corruptionSeed = UInt64(value) ?? 0
            case "--frame-step": frameStep = Int(value) ?? 1
            case "--priors": priors = value.split(separator: ",").compactMap { Double($0) }
            case "--threads": threads = Int(value)
            case "--output": output = value
            default: throw TorchError("unknown flag \(flag)")
            }
        }
        guard !checkpoint.isEmpty, !dataset.isEmpty, !output.isEmpty, !priors.isEmpty, frameStep >= 1 else {
            throw TorchError("--checkpoint, --dataset, --output and a non-empty --priors are required")
        }
    }

    /// CamVid streams (camvid, camvid-day, camvid-dusk) as the tool's --dataset names them, and
    /// the demo's streets (synthetic:STYLE:COUNT:SEED).
    func openStream() throws -> any SegmentationDataset {
        let parts = dataset.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { throw TorchError("--dataset is KIND:PATH") }
        let root = URL(fileURLWithPath: parts[1])
        var stream: any SegmentationDataset
        switch parts[0] {
        case "camvid": stream = try CamVid(root: root)
        case "camvid-day": stream = try CamVid(root: root, sequence: .day)
        case "camvid-dusk": stream = try CamVid(root: root, sequence: .dusk)
        case "synthetic":
            let fields = parts[1].split(separator: ":").map(String.init)
            guard fields.count == 3, let style = StreetStyle(rawValue: fields[0]), let count = Int(fields[1]),
                let seed = UInt64(fields[2])
            else { throw TorchError("--dataset synthetic:STYLE:COUNT:SEED, got \(dataset)") }
            stream = try SyntheticStreets(style: style, count: count, seed: seed)
        default: throw TorchError("prior-probe reads camvid, camvid-day, camvid-dusk and synthetic streams")
        }
        if let corruption {
            stream = CorruptedDataset(stream, schedule: try CorruptionSchedule(parsing: corruption), seed: corruptionSeed)
        }
        if frameStep > 1 { stream = DatasetSlice(stream, range: 0..<stream.count, step: frameStep) }
        return stream
    }
}

/// The label-free statistics of one prediction and its confusion matrix.
struct PriorRecord {
    var shifts: [Double]
    var entropy: Double
    var confidence: Double
    var logSumExp: Double
    var marginal: [Double]
    var prediction: Tensor
    var confusion: [Int64]
}

func measure(_ model: any SegmentationModel, _ input: Tensor, label: Tensor?, mapping: ClassMapping) throws -> PriorRecord {
    let layers = model.batchNormLayers
    let logits = try model.logits(input)
    let probabilities = try logits.softmax(dim: 1)
    let entropy = try Tent.entropy(logits).item()
    let confidence = try probabilities.amax(dims: [1]).mean().item()
    let top = try logits.amax(dims: [1], keepDim: true)
    let logSumExp = try ((logits - top).exp().sum(dims: [1], keepDim: true).log() + top).mean().item()
    let marginal = try probabilities.mean(dims: [0, 2, 3]).toArray(Float.self).map(Double.init)
    let prediction = try logits.argmax(dim: 1).reshape(Array(logits.shape.suffix(2)))
    var confusion = mapping.makeConfusionMatrix()
    if let label { try confusion.add(prediction: try mapping.apply(prediction), label: label) }
    return PriorRecord(
        shifts: layers.map { $0.inputShift ?? 0 }, entropy: entropy, confidence: confidence, logSumExp: logSumExp,
        marginal: marginal, prediction: prediction, confusion: confusion.counts)
}

func run() throws {
    let arguments = try ProbeArguments(Array(CommandLine.arguments.dropFirst()))
    Runtime.configure(Runtime.Settings(threads: arguments.threads))
    guard let family = ModelFamilies.named(arguments.model) else { throw TorchError("unknown model \(arguments.model)") }
    let model = try ModelFile.load(
        URL(fileURLWithPath: arguments.checkpoint), family: family, cardFile: arguments.card.map { URL(fileURLWithPath: $0) })
    let stream = try arguments.openStream()
    let mapping = try ClassMapping.resolve(
        modelClasses: model.card.classNames, numOutputs: model.card.numOutputs, datasetClasses: stream.classNames)
    _ = try model.prepareForAdaptation(statistics: .prior(1), adapting: nil)
    let layers = model.batchNormLayers
    for bn in layers { bn.recordsInputShift = true }

    guard FileManager.default.createFile(atPath: arguments.output, contents: nil),
        let file = FileHandle(forWritingAtPath: arguments.output)
    else {
        throw TorchError("cannot write \(arguments.output)")
    }
    defer { try? file.close() }
    let started = Date()
    for index in 0..<stream.count {
        let sample = try stream.sample(at: index)
        let input = try model.card.normalization.apply(sample.image)
        let records = try withNoGrad {
            try arguments.priors.map { prior -> PriorRecord in
                for bn in layers { bn.statistics = .prior(prior) }
                return try measure(model, input, label: sample.label, mapping: mapping)
            }
        }
        let pixels = Double(records[0].prediction.count)
        let agreement = try records.map { a in
            try records.map { b in try a.prediction.eq(b.prediction).sum().item() / pixels }
        }
        let line: [String: Any] = [
            "frame": index, "name": sample.name, "priors": arguments.priors,
            "shifts": records.map(\.shifts), "entropy": records.map(\.entropy),
            "confidence": records.map(\.confidence), "logsumexp": records.map(\.logSumExp),
            "marginal": records.map(\.marginal), "agreement": agreement,
            "confusion": records.map(\.confusion), "classes": mapping.makeConfusionMatrix().numClasses,
            "columns": mapping.makeConfusionMatrix().numColumns,
        ]
        file.write(try JSONSerialization.data(withJSONObject: line))
        file.write(Data("\n".utf8))
        if (index + 1) % 20 == 0 {
            FileHandle.standardError.write(
                Data(String(format: "%d/%d frames, %.0f s\n", index + 1, stream.count, Date().timeIntervalSince(started)).utf8))
        }
    }
}

do {
    try run()
} catch {
    FileHandle.standardError.write(Data("prior-probe: \(error)\n".utf8))
    exit(1)
}
