import Foundation
import Torch

/// Maps a model's outputs to a dataset's classes before the confusion matrix, for
/// cross-taxonomy evaluation (a Cityscapes model on CamVid). Outputs that map to no class
/// of the dataset go to one "unmapped" column.
public struct ClassMapping: Equatable, Sendable {
    /// Dataset class of each model output, or nil when it has none.
    public let target: [Int?]
    public let numTargetClasses: Int

    public init(target: [Int?], numTargetClasses: Int) {
        self.target = target
        self.numTargetClasses = numTargetClasses
    }

    /// The identity on `n` classes; outputs from n on (a background or void output) are unmapped.
    public static func identity(classes n: Int, outputs: Int) -> ClassMapping {
        ClassMapping(target: (0..<outputs).map { $0 < n ? $0 : nil }, numTargetClasses: n)
    }

    /// Cityscapes trainIds (19 classes; output 19, the background of ESPNet's checkpoints,
    /// unmapped) to the 11 CamVid classes, as shared/MODELS.md gives it.
    public static let cityscapesToCamVid: ClassMapping = {
        let camVid = Dictionary(uniqueKeysWithValues: ClassNames.camVid.enumerated().map { ($1, $0) })
        let pairs: [String] = [
            "Road", "Pavement", "Building", "Building", "Fence", "Pole", "SignSymbol", "SignSymbol", "Tree", "Tree",
            "Sky",
            "Pedestrian", "Bicyclist", "Car", "Car", "Car", "Car", "Bicyclist", "Bicyclist",
        ]
        return ClassMapping(target: pairs.map { camVid[$0] } + [nil], numTargetClasses: 11)
    }()

    /// Whether any output is unmapped (the confusion matrix then needs an extra column).
    public var hasUnmapped: Bool { target.contains { $0 == nil } }

    /// A confusion matrix with the columns this mapping needs.
    public func makeConfusionMatrix() -> ConfusionMatrix {
        ConfusionMatrix(numClasses: numTargetClasses, unmappedColumns: hasUnmapped ? 1 : 0)
    }

    /// Maps predicted output indices (int64, any shape) to dataset classes; unmapped outputs
    /// become `numTargetClasses` (the unmapped column).
    public func apply(_ prediction: Tensor) throws -> Tensor {
        let table = try Tensor(target.map { Int64($0 ?? numTargetClasses) }).to(device: prediction.device)
        let shape = prediction.shape
        return try table.indexSelect(dim: 0, index: prediction.reshape([-1])).reshape(shape)
    }
}
