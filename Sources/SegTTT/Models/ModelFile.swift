import Foundation
import Torch
import TorchNN

/// The network families SegTTT builds, by the name users give on the command line.
public enum ModelKind: String, CaseIterable, Sendable, Codable {
    /// ESPNet (Mehta et al. 2018); outputs, p, q and the skip variant come from the checkpoint.
    case espnet
    /// DeepLabV2 "DeeplabMulti" on a ResNet (101 unless the checkpoint says otherwise).
    case deeplabv2

    /// "espnet, deeplabv2", for help texts and error messages.
    public static var validNames: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// Model files: loading any checkpoint into the family the user names, and saving SegTTT's
/// own models as safetensors that carry their model card (class names, normalisation) in the
/// header's metadata, so a model trained on another label set loads with its own classes.
public enum ModelFile {
    /// Metadata key of the JSON-encoded `ModelCard`.
    public static let cardKey = "segttt.card"
    /// Metadata key of the family (`ModelKind.rawValue`).
    public static let kindKey = "segttt.model"

    /// Writes `model`'s state dict to a safetensors file, with its family and card as metadata.
    public static func save(_ model: any SegmentationModel, kind: ModelKind, to url: URL) throws {
        let card = String(decoding: try JSONEncoder().encode(model.card), as: UTF8.self)
        try SafeTensors.write(model.stateDict(), to: url, metadata: [kindKey: kind.rawValue, cardKey: card])
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

    /// Loads `url` as a `kind` model in evaluation mode.
    ///
    /// - Throws: `CheckpointError` or `DeepLabV2.LoadError` naming the file when it cannot be
    ///   read or does not fit the family (the message says what is missing and to check `--model`).
    public static func load(_ url: URL, kind: ModelKind) throws -> any SegmentationModel {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw CheckpointError(path: url.path, reason: "no such file; check --checkpoint")
        }
        switch kind {
        case .espnet:
            return try ESPNet.load(url, card: card(in: url))
        case .deeplabv2:
            do {
                return try DeepLabV2.load(url)
            } catch let error as DeepLabV2.LoadError where error.mismatch == nil {
                throw CheckpointError(path: url.path, reason: error.reason + "; check --model")
            }
        }
    }
}
