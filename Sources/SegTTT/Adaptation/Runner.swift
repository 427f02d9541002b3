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

/// When a method goes back to the source along a stream.
public enum StreamMode: String, OptionChoice, Sendable {
    /// Never: the method adapts along the whole stream.
    case continual
    /// After every frame: each frame is adapted on from the source alone.
    case episodic
    /// Where the stream's domain changes (`DomainLabelling`), e.g. at each change of
    /// corruption of a schedule: the oracle reset of the continual benchmarks.
    case domainReset = "domain-reset"
}

/// Streams a dataset through a test-time method, frame by frame in order, accumulating one
/// confusion matrix over the stream, one per domain (`DomainLabelling`) and one per round
/// (`RepeatedDataset`). Its whole state (model, method parts, matrices, position) can be saved
/// and restored, so an interrupted run resumes and ends with the same numbers as an
/// uninterrupted one.
public final class Runner {
    public let method: any TestTimeMethod
    /// The method's registry name, saved with the state.
    public let methodName: String
    public let dataset: any SegmentationDataset
    public let mapping: ClassMapping
    public let mode: StreamMode
    public private(set) var matrix: ConfusionMatrix
    /// One matrix per domain of the stream, in the order the domains first appear.
    public private(set) var domainMatrices: [(domain: String, matrix: ConfusionMatrix)] = []
    /// One matrix per round of a `RepeatedDataset` (one in all for another stream).
    public private(set) var roundMatrices: [ConfusionMatrix] = []
    /// Index of the next frame to process.
    public private(set) var position = 0
    /// Frames whose loss was NaN or infinite (their weights were left untouched).
    public private(set) var nonFiniteFrames: [Int] = []
    /// Frames the stream skipped as unreadable.
    public private(set) var skippedFrames: [FrameStream.SkippedFrame] = []

    /// - Parameter methodName: the method's registry name (default: its type's name).
    public init(
        method: any TestTimeMethod, methodName: String? = nil, dataset: any SegmentationDataset,
        mapping: ClassMapping, mode: StreamMode = .continual
    ) throws {
        guard mapping.target.count == method.model.card.numOutputs else {
            throw TorchError(
                "the class mapping covers \(mapping.target.count) outputs but \(method.model.card.name) has "
                    + "\(method.model.card.numOutputs)")
        }
        self.method = method
        self.methodName = methodName ?? String(describing: type(of: method))
        self.dataset = dataset
        self.mapping = mapping
        self.mode = mode
        matrix = mapping.makeConfusionMatrix()
    }

    /// The domain of frame `index` ("all" for a stream without domains).
    public func domain(at index: Int) -> String { (dataset as? DomainLabelling)?.domain(at: index) ?? "all" }

    /// The round of frame `index` (0 for a stream played once).
    public func round(at index: Int) -> Int { (dataset as? RepeatedDataset)?.round(at: index) ?? 0 }

    /// Adds one frame's matrix to the stream's, its domain's and its round's.
    private func add(_ single: ConfusionMatrix, frame index: Int) {
        matrix.merge(single)
        let domain = domain(at: index)
        if let slot = domainMatrices.firstIndex(where: { $0.domain == domain }) {
            domainMatrices[slot].matrix.merge(single)
        } else {
            var first = mapping.makeConfusionMatrix()
            first.merge(single)
            domainMatrices.append((domain, first))
        }
        let round = round(at: index)
        while roundMatrices.count <= round { roundMatrices.append(mapping.makeConfusionMatrix()) }
        roundMatrices[round].merge(single)
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
            if mode == .domainReset, frame.index > 0, domain(at: frame.index) != domain(at: frame.index - 1) {
                try method.reset()
            }
            let started = DispatchTime.now().uptimeNanoseconds
            let input = try method.model.card.normalization.apply(frame.sample.image.to(device: device))
            let result = try method.process(input)
            let mapped = try mapping.apply(result.prediction.to(device: .cpu))
            var frameIoU: Double?
            if let label = frame.sample.label {
                var single = mapping.makeConfusionMatrix()
                try single.add(prediction: mapped, label: label)
                add(single, frame: frame.index)
                frameIoU = single.meanIoU.isNaN ? nil : single.meanIoU
            }
            if mode == .episodic { try method.reset() }
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
        let shape = [matrix.numClasses, matrix.numColumns]
        state["runner.confusion"] = try Tensor(matrix.counts, shape: shape)
        for (index, entry) in domainMatrices.enumerated() {
            state["runner.domain.\(index)"] = try Tensor(entry.matrix.counts, shape: shape)
        }
        for (index, round) in roundMatrices.enumerated() {
            state["runner.round.\(index)"] = try Tensor(round.counts, shape: shape)
        }
        let metadata = [
            "position": String(position), "method": methodName,
            "non_finite_frames": nonFiniteFrames.map(String.init).joined(separator: ","),
            "domains": domainMatrices.map(\.domain).joined(separator: "\n"),
        ]
        try SafeTensors.write(state, to: url, metadata: metadata)
    }

    /// Restores a state written by `save(to:)` for the same method, model and dataset.
    public func resume(from url: URL) throws {
        let (state, metadata) = try SafeTensors.read(url)
        let shape = [matrix.numClasses, matrix.numColumns]
        let mismatch = CheckpointError(
            path: url.path,
            reason: "is not a saved state of a \(methodName) run on this model and dataset;"
                + " start without --resume or choose the matching output folder")
        guard metadata["method"] == methodName, let position = metadata["position"].flatMap(Int.init),
            let counts = state["runner.confusion"], counts.shape == shape
        else { throw mismatch }
        func restored(_ tensor: Tensor) throws -> ConfusionMatrix {
            guard tensor.shape == shape else { throw mismatch }
            var restored = mapping.makeConfusionMatrix()
            restored.setCounts(try tensor.toArray(Int64.self))
            return restored
        }
        try method.loadState(state)
        matrix = try restored(counts)
        let domains = (metadata["domains"] ?? "").split(separator: "\n").map(String.init)
        domainMatrices = try domains.enumerated().map { index, domain in
            guard let tensor = state["runner.domain.\(index)"] else { throw mismatch }
            return (domain, try restored(tensor))
        }
        roundMatrices = []
        while let tensor = state["runner.round.\(roundMatrices.count)"] { roundMatrices.append(try restored(tensor)) }
        self.position = position
        nonFiniteFrames = (metadata["non_finite_frames"] ?? "").split(separator: ",").compactMap { Int($0) }
    }
}
