import Torch
import TorchNN

/// BatchNorm adaptation whose prior is chosen along the stream, without labels, by how far
/// each candidate leaves the network's features from the source's. A network normalised with
/// statistics that fit the frames feeds each later layer inputs like those it was trained on;
/// source statistics that no longer fit leave every later layer's input shifted. The method
/// keeps as much of the source as it can while the shift that keeping it adds stays in
/// proportion to the share kept (docs/ADAPTATION.md has the measurements behind the rule).
///
/// The shift of a prior p on a frame x: BatchNorm normalises with p * source + (1 - p) *
/// frame statistics, and s_p(x) = the mean over BatchNorm layers of KL(N(layer input's batch
/// statistics) || N(source statistics)), averaged over channels (`BatchNorm2d.inputShift`),
/// from one forward pass of x alone. For every frame:
/// 1. one candidate of `priorCandidates` in turn (all of them on the first frame) is measured
///    and its stream shift follows S_p <- (1 - m) S_p + m s_p (m = `selectionMomentum`,
///    S_p = s_p at first);
/// 2. with S_0 the shift of the smallest candidate (the frame's statistics most), the frame is
///    predicted, with the flip views under `flip`, by the largest p whose shift is at most
///    S_0 * (1 + tau * p) (tau = `selectionTolerance`): each share of the source kept may add
///    at most that share, times tau, to the shift the frame's own statistics leave.
/// No gradient step; the weights never change. A frame costs one forward pass of its views
/// and one of the frame alone.
public final class PriorSelection: TestTimeMethod {
    public let model: any SegmentationModel
    public let config: AdaptationConfig
    public let source: Snapshot
    public let shifts: StreamShifts
    /// The candidates from the largest prior (most source) to the smallest.
    let candidates: [Double]

    public static let entry: MethodEntry = {
        var settings = AdaptationConfig()
        settings.priorCandidates = [0.85, 0.7, 0.5, 0.3, 0.15, 0]
        settings.selectionTolerance = 1.25
        settings.flip = true
        return MethodEntry(
            name: "bn-select",
            summary: "BatchNorm prior chosen along the stream by the feature shift each candidate leaves (no step).",
            type: PriorSelection.self, lossTerms: ["prior", "shift"], settings: settings)
    }()

    /// - Throws: when `priorCandidates` holds fewer than two priors (nothing to choose).
    public init(model: any SegmentationModel, config: AdaptationConfig = .defaults(for: .bnSelect)) throws {
        candidates = Array(Set(config.priorCandidates)).sorted(by: >)
        guard candidates.count >= 2 else {
            throw TorchError("bn-select needs two or more priorCandidates to choose from (e.g. [0.85, 0.5, 0])")
        }
        self.model = model
        self.config = config
        _ = try model.prepareForAdaptation(statistics: .prior(candidates[0]), adapting: nil)
        source = try Snapshot(of: model)
        shifts = StreamShifts(momentum: config.selectionMomentum, count: candidates.count)
    }

    public var parts: [(name: String, part: any MethodPart)] { methodParts(("shifts", shifts)) }

    /// The index of the candidate the stream's shifts choose.
    func chosen() -> Int {
        let values = shifts.values
        guard let floor = values.last else { return 0 }
        return values.indices.first { values[$0] <= floor * (1 + config.selectionTolerance * candidates[$0]) }
            ?? values.count - 1
    }

    public func process(_ input: Tensor) throws -> FrameResult {
        let layers = model.batchNormLayers
        try withNoGrad {
            for bn in layers { bn.recordsInputShift = true }
            defer { for bn in layers { bn.recordsInputShift = false } }
            for index in shifts.nextMeasured() {
                for bn in layers { bn.statistics = .prior(candidates[index]) }
                _ = try model.logits(input)
                shifts.update(index, with: layers.compactMap(\.inputShift).reduce(0, +) / Double(max(layers.count, 1)))
            }
            shifts.frames += 1
        }
        let choice = chosen()
        for bn in layers { bn.statistics = .prior(candidates[choice]) }
        let scores = try withNoGrad { try model.viewLogits(input, flip: config.flip).mean(dims: [0], keepDim: true) }
        return try FrameResult(scores: scores, losses: ["prior": candidates[choice], "shift": shifts.values[choice]])
    }
}

/// Each candidate's feature shift along the stream, a moving average, and which candidate
/// each frame measures (see `PriorSelection`).
public final class StreamShifts: MethodPart {
    public let momentum: Double
    public let count: Int
    public private(set) var values: [Double] = []
    /// Frames seen.
    var frames = 0

    public init(momentum: Double, count: Int) {
        (self.momentum, self.count) = (momentum, count)
    }

    /// Every candidate on the first frame, then one in turn.
    func nextMeasured() -> [Int] {
        values.isEmpty ? Array(0..<count) : [frames % count]
    }

    func update(_ index: Int, with shift: Double) {
        if values.count < count {
            values.append(shift)
        } else {
            values[index] = (1 - momentum) * values[index] + momentum * shift
        }
    }

    public func state() throws -> StateDict {
        values.isEmpty ? StateDict([]) : StateDict([
            ("values", try Tensor(values, shape: [values.count]).to(.float64)),
            ("frames", try Tensor([Double(frames)], shape: [1]).to(.float64)),
        ])
    }
    public func loadState(_ state: StateDict) throws {
        values = try state["values"].map { try $0.toArray(Double.self) } ?? []
        frames = try state["frames"].map { Int(try $0.toArray(Double.self)[0]) } ?? 0
        guard values.isEmpty || values.count == count else {
            throw TorchError("the saved state holds \(values.count) candidate shifts, the method has \(count) candidates")
        }
    }
    public func reset() throws { (values, frames) = ([], 0) }
}
