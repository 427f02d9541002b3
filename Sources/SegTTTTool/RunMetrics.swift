import Foundation
import SegTTT

/// What `metrics.json` holds at the end of a run: the stream's metrics from its one confusion
/// matrix (percentages), per-class IoU, timing, and the frames that needed attention.
public struct RunMetrics: Codable, Equatable {
    public struct ClassIoU: Codable, Equatable {
        public var name: String
        /// nil: the class is absent from both predictions and labels (left out of the mean).
        public var iou: Double?
    }

    /// The metrics of part of a stream: one domain of a corruption schedule, or one round.
    public struct Segment: Codable, Equatable {
        public var name: String
        public var meanIoU: Double
        public var pixelAccuracy: Double
        /// Labelled pixels counted.
        public var pixels: Int64

        init(name: String, matrix: ConfusionMatrix) {
            self.name = name
            meanIoU = matrix.meanIoU * 100
            pixelAccuracy = matrix.pixelAccuracy * 100
            pixels = matrix.counts.reduce(0, +)
        }

        enum CodingKeys: String, CodingKey {
            case name, pixels
            case meanIoU = "miou"
            case pixelAccuracy = "pixel_accuracy"
        }
    }

    public var method: String
    public var model: String
    public var checkpoint: String
    public var dataset: String
    public var frames: Int
    public var meanIoU: Double
    public var pixelAccuracy: Double
    public var meanClassAccuracy: Double
    public var frequencyWeightedIoU: Double
    public var classes: [ClassIoU]
    /// Mean wall time of predicting and adapting one frame (decoding excluded).
    public var secondsPerFrame: Double
    /// Frames whose loss was not finite (their weights were left untouched).
    public var nonFiniteLossFrames: [Int]
    /// Frames skipped as unreadable, with the reason.
    public var skippedFrames: [String]
    /// Row-major counts [classes x columns]: true class by predicted column (the last
    /// columns are outputs that map to no class of the dataset).
    public var confusionMatrix: [[Int64]]
    /// Per domain of the stream, in the order they first appear (nil for a stream of one domain).
    public var domains: [Segment]?
    /// Per round of a stream played several times (nil for one round).
    public var rounds: [Segment]?

    enum CodingKeys: String, CodingKey {
        case method, model, checkpoint, dataset, frames
        case meanIoU = "miou"
        case pixelAccuracy = "pixel_accuracy"
        case meanClassAccuracy = "mean_class_accuracy"
        case frequencyWeightedIoU = "fw_iou"
        case classes
        case secondsPerFrame = "seconds_per_frame"
        case nonFiniteLossFrames = "non_finite_loss_frames"
        case skippedFrames = "skipped_frames"
        case confusionMatrix = "confusion_matrix"
        case domains, rounds
    }

    init(
        method: String, model: String, checkpoint: String, dataset: String, frames: Int, matrix: ConfusionMatrix,
        classNames: [String], secondsPerFrame: Double, nonFiniteLossFrames: [Int], skippedFrames: [String],
        domains: [Segment]? = nil, rounds: [Segment]? = nil
    ) {
        self.domains = domains
        self.rounds = rounds
        self.method = method
        self.model = model
        self.checkpoint = checkpoint
        self.dataset = dataset
        self.frames = frames
        meanIoU = matrix.meanIoU * 100
        pixelAccuracy = matrix.pixelAccuracy * 100
        meanClassAccuracy = matrix.meanClassAccuracy * 100
        frequencyWeightedIoU = matrix.frequencyWeightedIoU * 100
        classes = zip(classNames, matrix.iouPerClass).map { ClassIoU(name: $0, iou: $1.map { $0 * 100 }) }
        self.secondsPerFrame = secondsPerFrame
        self.nonFiniteLossFrames = nonFiniteLossFrames
        self.skippedFrames = skippedFrames
        confusionMatrix = (0..<matrix.numClasses).map { row in
            (0..<matrix.numColumns).map { matrix[row, $0] }
        }
    }

    /// A stream with no labelled pixel has NaN metrics; JSON has no NaN, so they are written as "nan".
    private static let nonFiniteEncoding = JSONEncoder.NonConformingFloatEncodingStrategy.convertToString(
        positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    private static let nonFinite = JSONDecoder.NonConformingFloatDecodingStrategy.convertFromString(
        positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")

    public static func read(_ url: URL) throws -> RunMetrics {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ToolError("\(url.path): cannot read the metrics file")
        }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = nonFinite
        return try decoder.decode(RunMetrics.self, from: data)
    }

    func write(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = Self.nonFiniteEncoding
        try encoder.encode(self).write(to: url, options: .atomic)
    }
}
