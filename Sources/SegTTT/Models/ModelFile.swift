import Foundation
import Torch
import TorchNN

/// Model files: loading any checkpoint into the family the user names, and saving SegTTT's
/// own models as safetensors that carry their model card (class names, normalisation) in the
/// header's metadata, so a model trained on another label set loads with its own classes.
public enum ModelFile {
    /// Metadata key of the JSON-encoded `ModelCard`.
    public static let cardKey = "segttt.card"
    /// Metadata key of the family (`ModelFamily.name`).
    public static let kindKey = "segttt.model"

    /// Writes `model`'s state dict to a safetensors file, with its family and card as metadata.
    public static func save(_ model: any SegmentationModel, family: any ModelFamily, to url: URL) throws {
        let card = String(decoding: try JSONEncoder().encode(model.card), as: UTF8.self)
        try SafeTensors.write(model.stateDict(), to: url, metadata: [kindKey: family.name, cardKey: card])
    }

    /// The model card stored in a SegTTT safetensors file; nil for any other checkpoint.
    public static func card(in url: URL) throws -> ModelCard? {
        guard try Checkpoint.format(of: url) == .safetensors else { return nil }
        let metadata = try SafeTensors.read(url).metadata
        guard let json = metadata[cardKey] else { return nil }
        do {
            return try JSONDecoder().decode(ModelCard.self, from: Data(json.utf8))
        } catch {
            throw CheckpointError(path: url.path, reason: "its \(cardKey) metadata is not a model card: \(error)")
        }
    }

    /// Loads `url` as a model of `family` in evaluation mode.
    ///
    /// - Parameter cardFile: a model card file (TorchScript models; nil: the one beside `url`).
    /// - Throws: `CheckpointError` naming the file when it cannot be read or does not fit the
    ///   family (the message says what is missing and to check `--model`).
    public static func load(_ url: URL, family: any ModelFamily, cardFile: URL? = nil) throws -> any SegmentationModel {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw CheckpointError(path: url.path, reason: "no such file; check --checkpoint")
        }
        return try family.load(url, cardFile: cardFile)
    }
}
