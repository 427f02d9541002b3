import Foundation
import SegTTTKernels
import Torch

/// Streams `dataset` through a frozen `model` (evaluation mode, no gradient) and accumulates
/// the confusion matrix of its argmax predictions, mapped to the dataset's classes.
///
/// - Parameters:
///   - mapping: model output -> dataset class; `ClassMapping.identity` when they share classes.
///   - limit: evaluate only the first `limit` frames.
public func evaluateFrozen(
    _ model: any SegmentationModel, on dataset: any SegmentationDataset, mapping: ClassMapping, limit: Int? = nil
) throws -> ConfusionMatrix {
    model.eval()
    var matrix = mapping.makeConfusionMatrix()
    let stream = try FrameStream(dataset)
    var seen = 0
    while seen < (limit ?? Int.max), let frame = try stream.next() {
        guard let label = frame.sample.label else { continue }
        let prediction = try withNoGrad {
            let input = try model.card.normalization.apply(frame.sample.image)
            return try Kernels.argmax(model.logits(input), dim: 1).squeeze(dim: 0)
        }
        try matrix.add(prediction: mapping.apply(prediction), label: label)
        seen += 1
    }
    return matrix
}
