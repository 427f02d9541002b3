import Foundation
import Torch

/// Counts of (true class, predicted column) pixel pairs accumulated over a whole stream, and
/// the segmentation metrics computed from them.
///
/// Rows are the `numClasses` true classes; columns are the same classes plus, for
/// cross-taxonomy evaluation, extra "unmapped" columns for predictions that belong to no
/// class of the dataset (a false negative for the true class, a false positive for none).
/// Pixels whose label is outside 0..<numClasses (the ignore label 255, void) are not counted.
/// Accumulation runs in libtorch (`bincount`), never pixel by pixel in Swift.
public struct ConfusionMatrix: Equatable, Sendable, Codable {
    public let numClasses: Int
    /// Predicted columns: numClasses, plus the unmapped ones.
    public let numColumns: Int
    /// Row-major counts [numClasses x numColumns].
    public private(set) var counts: [Int64]

    public init(numClasses: Int, unmappedColumns: Int = 0) {
        self.numClasses = numClasses
        self.numColumns = numClasses + unmappedColumns
        counts = [Int64](repeating: 0, count: numClasses * numColumns)
    }

    /// Adds one frame: `prediction` and `label` are int64 tensors of the same shape; predictions
    /// must lie in 0..<numColumns.
    public mutating func add(prediction: Tensor, label: Tensor) throws {
        guard prediction.shape == label.shape else {
            throw TorchError("prediction \(prediction.shape) and label \(label.shape) differ in size")
        }
        let frame = try ConfusionMatrix.counts(
            prediction: prediction, label: label, numClasses: numClasses, numColumns: numColumns)
        for i in counts.indices { counts[i] += frame[i] }
    }

    /// Counts of one frame as a flat [numClasses * numColumns] array.
    static func counts(prediction: Tensor, label: Tensor, numClasses: Int, numColumns: Int) throws -> [Int64] {
        let pred = try prediction.to(.int64, device: .cpu).reshape([-1])
        let truth = try label.to(.int64, device: .cpu).reshape([-1])
        if pred.count > 0 {
            let (low, high) = (try pred.amin().itemInt(), try pred.amax().itemInt())
            guard low >= 0, high < numColumns else {
                throw TorchError("predictions span \(low)...\(high) but the confusion matrix has \(numColumns) columns")
            }
        }
        let valid = try truth.ge(0).logicalAnd(truth.lt(Double(numClasses)))
        let cells = numClasses * numColumns
        // Invalid pixels go to one extra bin that is dropped.
        let index = try Tensor.where(valid, truth * Double(numColumns) + pred, Tensor(scalar: Int64(cells)))
        let binned = try index.bincount(minLength: cells + 1)
        return Array(try binned.toArray(Int64.self).prefix(cells))
    }

    /// Replaces the counts (restoring a saved run); `counts` must have numClasses * numColumns entries.
    mutating func setCounts(_ counts: [Int64]) {
        precondition(counts.count == self.counts.count, "confusion matrix sizes differ")
        self.counts = counts
    }

    /// Merges another matrix of the same shape (e.g. one frame's).
    public mutating func merge(_ other: ConfusionMatrix) {
        precondition(other.numClasses == numClasses && other.numColumns == numColumns, "confusion matrix shapes differ")
        for i in counts.indices { counts[i] += other.counts[i] }
    }

    public subscript(truth: Int, predicted: Int) -> Int64 { counts[truth * numColumns + predicted] }

    private func rowSum(_ c: Int) -> Int64 { (0..<numColumns).reduce(0) { $0 + self[c, $1] } }
    private func columnSum(_ c: Int) -> Int64 { (0..<numClasses).reduce(0) { $0 + self[$1, c] } }

    /// IoU per class = TP / (TP + FP + FN); nil for a class absent from both labels and predictions.
    public var iouPerClass: [Double?] {
        (0..<numClasses).map { c in
            let tp = self[c, c]
            let union = rowSum(c) + columnSum(c) - tp
            return union > 0 ? Double(tp) / Double(union) : nil
        }
    }

    /// Mean IoU over the classes that appear (in labels or predictions), in 0...1.
    public var meanIoU: Double {
        let present = iouPerClass.compactMap { $0 }
        return present.isEmpty ? .nan : present.reduce(0, +) / Double(present.count)
    }

    /// Correct pixels over counted pixels.
    public var pixelAccuracy: Double {
        let total = counts.reduce(0, +)
        return total > 0 ? Double((0..<numClasses).reduce(0) { $0 + self[$1, $1] }) / Double(total) : .nan
    }

    /// Mean over classes present in the labels of TP / (TP + FN).
    public var meanClassAccuracy: Double {
        let accuracies = (0..<numClasses).compactMap { c -> Double? in
            let n = rowSum(c)
            return n > 0 ? Double(self[c, c]) / Double(n) : nil
        }
        return accuracies.isEmpty ? .nan : accuracies.reduce(0, +) / Double(accuracies.count)
    }

    /// Sum over classes of (label frequency) x IoU.
    public var frequencyWeightedIoU: Double {
        let total = Double(counts.reduce(0, +))
        guard total > 0 else { return .nan }
        return zip(0..<numClasses, iouPerClass).reduce(0) { sum, entry in
            sum + Double(rowSum(entry.0)) / total * (entry.1 ?? 0)
        }
    }
}
