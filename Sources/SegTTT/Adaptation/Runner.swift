import Foundation
import Torch
import TorchNN

/// One frame's record, for progress bars and per-frame CSV files.
public struct FrameRecord: Equatable, Sendable, Codable {
    /// Position in the stream.
    public var index: Int
    public var name: String
    /// The method's loss terms for this frame (empty for methods without a step).
    public var losses: [String: Double]
    /// mIoU of this frame alone (classes present in it), in 0...1; nil without a label.
    public var frameIoU: Double?
    /// Wall time of predicting and adapting, in seconds (decoding excluded).
    public var seconds: Double
    public var nonFiniteLoss: Bool
}

/// One processed frame, for listeners that need more than its record.
public struct FrameOutput {
    public var index: Int
    public var sample: Sample
    public var result: FrameResult
    /// The prediction [H, W] int64 in the dataset's classes (`mapping.numTargetClasses` for
    /// outputs that map to no class).
    public var prediction: Tensor
}

/// Streams a dataset through a test-time method, frame by frame in order, accumulating one
/// confusion matrix over the stream. Its whole state (model, optimizer, generator, matrix,
/// position) can be saved and restored, so an interrupted run resumes and ends with the same
/// numbers as an uninterrupted one.
public final class Runner {
    public let method: any TestTimeMethod
    public let dataset: any SegmentationDataset
    public let mapping: ClassMapping
    public private(set) var matrix: ConfusionMatrix
    /// Index of the next frame to process.
    public private(set) var position = 0
    /// Frames whose loss was NaN or infinite (their weights were left untouched).
    public private(set) var nonFiniteFrames: [Int] = []
    /// Frames the stream skipped as unreadable.
    public private(set) var skippedFrames: [FrameStream.SkippedFrame] = []

    public init(method: any TestTimeMethod, dataset: any SegmentationDataset, mapping: ClassMapping) throws {
        guard mapping.target.count == method.model.card.numOutputs else {
            throw TorchError(
                "the class mapping covers \(mapping.target.count) outputs but \(method.model.card.name) has "
                    + "\(method.model.card.numOutputs)")
        }
        self.method = method
        self.dataset = dataset
        self.mapping = mapping
        matrix = mapping.makeConfusionMatrix()
    }

    /// Processes frames from `position` up to `end` (the dataset's end by default), calling
    /// `onFrame` after each; with `skipBadFrames`, unreadable frames are skipped and listed in
    /// `skippedFrames` instead of stopping the run.
    ///
    /// The input goes to the model's device; predictions come back to the CPU.
    ///
    /// - Parameter onOutput: called before `onFrame` with the frame, the method's result and
    ///   the prediction in the dataset's classes, e.g. to write it as an image; its time is
    ///   not in the record.
    public func run(
        until end: Int? = nil, skipBadFrames: Bool = false,
        onOutput: (FrameOutput) throws -> Void = { _ in },
        onFrame: (FrameRecord) throws -> Void = { _ in }
    )
        throws
    {
        let device = method.model.namedParameters().first?.parameter.value.device ?? .cpu
        let stop = Swift.min(end ?? dataset.count, dataset.count)
        guard position < stop else { return }
        let stream = try FrameStream(dataset, options: .init(skipBadFrames: skipBadFrames, startIndex: position))
        defer { stream.cancel() }
        while position < stop, let frame = try stream.next() {
            guard frame.index < stop else { break }
            let started = DispatchTime.now().uptimeNanoseconds
            let input = try method.model.card.normalization.apply(frame.sample.image.to(device: device))
            let result = try method.process(input)
            let mapped = try mapping.apply(result.prediction.to(device: .cpu))
            var frameIoU: Double?
            if let label = frame.sample.label {
                var single = mapping.makeConfusionMatrix()
                try single.add(prediction: mapped, label: label)
                matrix.merge(single)
                frameIoU = single.meanIoU.isNaN ? nil : single.meanIoU
            }
            if result.nonFiniteLoss { nonFiniteFrames.append(frame.index) }
            position = frame.index + 1
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            try onOutput(FrameOutput(index: frame.index, sample: frame.sample, result: result, prediction: mapped))
            try onFrame(
                FrameRecord(
                    index: frame.index, name: frame.sample.name, losses: result.losses, frameIoU: frameIoU,
                    seconds: seconds, nonFiniteLoss: result.nonFiniteLoss))
        }
        skippedFrames += stream.skipped
    }

    // MARK: saving and resuming

    /// Writes the run's whole state to a safetensors file, atomically (a crash while writing
    /// leaves the previous state file intact).
    public func save(to url: URL) throws {
        var state = try method.state()
        state["runner.confusion"] = try Tensor(matrix.counts, shape: [matrix.numClasses, matrix.numColumns])
        let metadata = [
            "position": String(position), "method": method.kind.rawValue,
            "non_finite_frames": nonFiniteFrames.map(String.init).joined(separator: ","),
        ]
        try SafeTensors.write(state, to: url, metadata: metadata)
    }

    /// Restores a state written by `save(to:)` for the same method, model and dataset.
    public func resume(from url: URL) throws {
        let (state, metadata) = try SafeTensors.read(url)
        guard metadata["method"] == method.kind.rawValue, let position = metadata["position"].flatMap(Int.init),
            let counts = state["runner.confusion"], counts.shape == [matrix.numClasses, matrix.numColumns]
        else {
            throw CheckpointError(
                path: url.path,
                reason: "is not a saved state of a \(method.kind.rawValue) run on this model and dataset;"
                    + " start without --resume or choose the matching output folder")
        }
        try method.loadState(state)
        var restored = mapping.makeConfusionMatrix()
        restored.setCounts(try counts.toArray(Int64.self))
        matrix = restored
        self.position = position
        nonFiniteFrames = (metadata["non_finite_frames"] ?? "").split(separator: ",").compactMap { Int($0) }
    }
}
