import ArgumentParser
import Foundation
import SegTTT
import Torch

/// A `RunConfiguration` turned into the things a run needs: the model family and files, the
/// stream, the method's entry and settings, the device. Its option checks are done
/// (`RunConfiguration`); the ones here need the files or the machine.
struct RunPlan {
    var configuration: RunConfiguration
    var family: any ModelFamily
    var checkpoint: URL
    var cardFile: URL?
    var classMap: URL?
    var dataset: DatasetSpec
    var corruption: CorruptionSchedule?
    var method: MethodEntry
    var device: Device

    var settings: RunSettings { configuration.settings }
    var config: AdaptationConfig { configuration.method }

    /// - Throws: `ToolError` naming the option and what to give.
    init(_ configuration: RunConfiguration) throws {
        let c = configuration.settings
        self.configuration = configuration
        guard let model = c.model else { throw ToolError("missing --model; use one of \(ModelFamilies.validNames)") }
        guard let family = ModelFamilies.named(model) else {
            throw ToolError("unknown --model '\(model)'; use one of \(ModelFamilies.validNames)")
        }
        guard let checkpoint = c.checkpoint else {
            throw ToolError("missing --checkpoint; give the model's weights (.pth or .safetensors)")
        }
        guard let dataset = c.dataset else {
            throw ToolError("missing --dataset; use KIND:PATH (\(DatasetSpec.kinds)) or a folder with classes.json")
        }
        self.family = family
        self.checkpoint = URL(fileURLWithPath: (checkpoint as NSString).expandingTildeInPath)
        cardFile = c.card.map { URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath) }
        if let cardFile, !FileManager.default.fileExists(atPath: cardFile.path) {
            throw ToolError("--card \(cardFile.path): no such file; give the model card (YAML or JSON)")
        }
        classMap = c.classMap.map { URL(fileURLWithPath: $0) }
        self.dataset = DatasetSpec(dataset)
        corruption = try c.corruption.map { text in
            do {
                return try CorruptionSchedule(parsing: text)
            } catch {
                throw ValidationError("--corruption \(text): \(error)")
            }
        }
        // RunConfiguration has checked the name.
        guard let method = Methods.named(c.method) else { throw ToolError("unknown --method '\(c.method)'") }
        self.method = method
        device = try Device(parsing: c.device)
        do { try device.checkAvailable() } catch let error as TorchError {
            throw ToolError("--device \(error.message)")
        }
    }

    /// The stream, corrupted when asked, then every `frameStep`th frame of it, played `rounds` times.
    func openStream() throws -> any SegmentationDataset {
        var stream = try dataset.open()
        if let corruption { stream = CorruptedDataset(stream, schedule: corruption, seed: settings.corruptionSeed) }
        if settings.frameStep > 1 { stream = DatasetSlice(stream, range: 0..<stream.count, step: settings.frameStep) }
        if settings.rounds > 1 { stream = RepeatedDataset(stream, rounds: settings.rounds) }
        return stream
    }

    /// The model on its device.
    func loadModel() throws -> any SegmentationModel {
        let model = try ModelFile.load(checkpoint, family: family, cardFile: cardFile)
        if let script = model as? TorchScriptModel, script.unredirectedBatchNormCalls > 0 {
            FileHandle.standardError.write(
                Data(
                    ("warning: \(checkpoint.lastPathComponent): \(script.unredirectedBatchNormCalls) BatchNorm call(s) "
                        + "normalise as the file says whatever --method chooses (`segttt info` says why)\n").utf8))
        }
        if device != .cpu { try model.move(to: device) }
        return model
    }
}
