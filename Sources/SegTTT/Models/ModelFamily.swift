import Foundation
import Torch
import TorchNN

/// A network family SegTTT loads, by the name users give on the command line (`--model`).
///
/// A new family is one file that defines a type conforming to this protocol and one line in
/// `ModelFamilies.all`.
public protocol ModelFamily: Sendable {
    /// The command-line name, "espnet".
    var name: String { get }
    /// What it loads, in a few words, for help texts.
    var summary: String { get }
    /// Loads `url` as a model of this family, in evaluation mode.
    ///
    /// - Parameter cardFile: a model card file given by the user (nil: the family's own way
    ///   of knowing the model's classes and normalisation).
    /// - Throws: `CheckpointError` naming the file and what to check.
    func load(_ url: URL, cardFile: URL?) throws -> any SegmentationModel
    /// A freshly initialised model with `classNames` as its outputs, for training from
    /// scratch, shaped by the family's `architecture` settings ("p", "q", "backbone"); nil
    /// where the family has no such constructor.
    func fresh(classNames: [String], architecture: [String: Int], generator: Generator) throws
        -> (any SegmentationModel)?
}

/// The families SegTTT knows.
public enum ModelFamilies {
    public static let all: [any ModelFamily] = [ESPNetFamily(), DeepLabV2Family(), TorchScriptFamily()]

    /// The family called `name` (any case), or nil.
    public static func named(_ name: String) -> (any ModelFamily)? {
        all.first { $0.name == name.lowercased() }
    }

    /// "espnet, deeplabv2, torchscript", for help texts and error messages.
    public static var validNames: String { all.map(\.name).joined(separator: ", ") }
}

extension ModelFamily {
    /// Throws unless `cardFile` is nil: the native families carry their cards themselves.
    func refuseCardFile(_ cardFile: URL?) throws {
        guard let cardFile else { return }
        throw CheckpointError(
            path: cardFile.path, reason: "a model card file is read for torchscript models only, not \(name)")
    }
}
