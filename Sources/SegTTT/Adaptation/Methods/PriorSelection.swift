import Foundation
import Torch
import TorchNN

/// BatchNorm adaptation whose prior is chosen along the stream, without labels, by how far
/// each candidate leaves the network's features from the source's, checked by what each
/// candidate predicts. A network normalised with statistics that fit the frames feeds each
/// later layer inputs like those it was trained on; source statistics that no longer fit leave
/// every later layer's input shifted. The method keeps as much of the source as it can while
/// the shift that keeping it adds stays in proportion to the share kept; the prediction then
/// corrects that choice where the features mislead (docs/ADAPTATION.md has the measurements
/// behind the rule).
///
/// For a prior p, BatchNorm normalises with p * source + (1 - p) * frame statistics. One
/// forward pass of the frame alone under p gives
/// - its shift s_p: the mean over BatchNorm layers of KL(N(layer input's batch statistics) ||
///   N(source statistics)), averaged over channels (`BatchNorm2d.inputShift`);
/// - its prediction's mean entropy h_p = mean over pixels of -sum_k q_k log q_k, and its mean
///   prediction m_p = mean over pixels of q (q: the softmax of the logits).
/// For every frame:
/// 1. every candidate of `priorCandidates` is measured on each of the first ceil(1 / m)
///    frames (the moving average's span), one in turn on later frames; a measured candidate's
///    stream statistics follow S_p <- (1 - m) S_p + m s_p, H_p and M_p alike
///    (m = `selectionMomentum`; each starts at the first measurement). The information of
///    the candidate's predictions is I_p = entropy(M_p) - H_p (>= 0): high when each pixel's
///    prediction is confident and the stream's predictions spread over the classes.
/// 2. The features choose: with S_0 the shift of the smallest candidate, the largest p whose
///    shift is at most S_0 * (1 + tau * p) (tau = `selectionTolerance`): each share of the
///    source kept may add at most that share, times tau, to the shift the frame's own
///    statistics leave.
/// 3. The prediction checks, with lambda = `selectionInformationTolerance` (nil: skip 3): the
///    largest prior whose information is at least the chosen one's times 1 - delta is taken
///    (delta = `selectionInformationMargin`; source statistics that predict about as well are
///    kept); then, while the chosen prior's H_p exceeds the lowest H
///    of the smaller candidates times 1 + kappa * p (kappa = `selectionEntropyTolerance`, nil:
///    no such check; each share of the source kept may raise the entropy by at most kappa times
///    that share, as in step 2) or its I_p is below the highest I of the smaller candidates
///    times 1 - lambda, the next smaller prior is taken (source statistics that leave the
///    prediction unsure or collapsed are dropped, for smaller priors that predict better: a
///    prior never gives way to candidates that all predict less surely).
/// The frame is predicted under the chosen prior from its views: the frame at each scale of
/// `augmentationScales` and, under `flip`, its mirror image, their softmax probabilities
/// resized back to the frame and averaged (the scores are the mean's logarithm); with the one
/// scale 1, the mean of the views' logits. No gradient step; the weights never change. A frame
/// costs one forward pass of its views and one of the frame alone per candidate measured.
public final class PriorSelection: TestTimeMethod {
    public let model: any SegmentationModel
    public let config: AdaptationConfig
    public let source: Snapshot
    public let statistics: CandidateStatistics
    /// The candidates from the largest prior (most source) to the smallest.
    let candidates: [Double]

    public static let entry: MethodEntry = {
        var settings = AdaptationConfig()
        settings.priorCandidates = [0.85, 0.7, 0.5, 0.3, 0.15, 0]
        settings.selectionTolerance = 1.25
        settings.selectionEntropyTolerance = 0.4
        settings.selectionInformationTolerance = 0.2
        settings.selectionInformationMargin = 0.02
        settings.flip = true
        settings.augmentationScales = [0.75, 1, 1.25]
        return MethodEntry(
            name: "bn-select",
            summary: "BatchNorm prior chosen along the stream by the feature shift each candidate leaves, checked by its predictions (no step).",
            type: PriorSelection.self, lossTerms: ["prior", "shift", "entropy", "information"], settings: settings)
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
        statistics = CandidateStatistics(momentum: config.selectionMomentum, count: candidates.count)
    }

    public var parts: [(name: String, part: any MethodPart)] { methodParts(("shifts", statistics)) }

    /// Steps 2 and 3 above: the index of the chosen candidate, given each candidate's stream
    /// shift S_p, mean entropy H_p and information I_p, the candidates from the largest prior
    /// down.
    public static func choice(
        candidates: [Double], shifts: [Double], entropies: [Double], information: [Double], config: AdaptationConfig
    ) -> Int {
        guard let floor = shifts.last else { return 0 }
        var choice =
            shifts.indices.first { shifts[$0] <= floor * (1 + config.selectionTolerance * candidates[$0]) }
            ?? shifts.count - 1
        guard let lambda = config.selectionInformationTolerance, information.count == shifts.count,
            entropies.count == shifts.count
        else { return choice }
        // The first candidate about as informative is the largest such prior.
        let enough = information[choice] * (1 - config.selectionInformationMargin)
        choice = information.indices.first { information[$0] >= enough } ?? choice
        // Against the smaller priors only: those the chosen one can give way to.
        func givesWay(_ index: Int) -> Bool {
            let smaller = (index + 1)..<shifts.count
            let lowestEntropy = entropies[smaller].min() ?? 0, highestInformation = information[smaller].max() ?? 0
            if let kappa = config.selectionEntropyTolerance, entropies[index] > lowestEntropy * (1 + kappa * candidates[index]) {
                return true
            }
            return information[index] < highestInformation * (1 - lambda)
        }
        while choice < shifts.count - 1, givesWay(choice) { choice += 1 }
        return choice
    }

    public func process(_ input: Tensor) throws -> FrameResult {
        let layers = model.batchNormLayers
        try withNoGrad {
            for bn in layers { bn.recordsInputShift = true }
            defer { for bn in layers { bn.recordsInputShift = false } }
            for index in statistics.nextMeasured() {
                for bn in layers { bn.statistics = .prior(candidates[index]) }
                let logits = try model.logits(input)
                let logProbabilities = try logits.logSoftmax(dim: 1), probabilities = try logProbabilities.exp()
                let entropy = try Tent.entropy(probabilities: probabilities, logProbabilities: logProbabilities).item()
                let marginal = try probabilities.mean(dims: [0, 2, 3]).to(.float64).toArray(Double.self)
                statistics.update(
                    index, shift: layers.compactMap(\.inputShift).reduce(0, +) / Double(max(layers.count, 1)),
                    entropy: entropy, marginal: marginal)
            }
            statistics.frames += 1
        }
        let information = statistics.information
        let choice = Self.choice(
            candidates: candidates, shifts: statistics.shifts, entropies: statistics.entropies, information: information,
            config: config)
        for bn in layers { bn.statistics = .prior(candidates[choice]) }
        let scores = try withNoGrad {
            guard config.augmentationScales != [1] else {
                return try model.viewLogits(input, flip: config.flip).mean(dims: [0], keepDim: true)
            }
            do {
                return try model.augmentedProbabilities(input, scales: config.augmentationScales, flip: config.flip).log()
            } catch {
                throw TorchError(
                    "bn-select predicts from the frame resized by \(config.augmentationScales), and the network failed on a "
                        + "\(input.shape[2])x\(input.shape[3]) frame resized so: \(error). A network that takes frames of one "
                        + "size only needs augmentationScales [1] (the frame and its mirror image alone)")
            }
        }
        return try FrameResult(
            scores: scores,
            losses: [
                "prior": candidates[choice], "shift": statistics.shifts[choice], "entropy": statistics.entropies[choice],
                "information": information[choice],
            ])
    }
}

/// Each candidate's feature shift, mean entropy and mean prediction along the stream, as
/// moving averages, and which candidate each frame measures (see `PriorSelection`).
public final class CandidateStatistics: MethodPart {
    public let momentum: Double
    public let count: Int
    /// S_p, H_p and M_p per candidate (empty before the first frame).
    public private(set) var shifts: [Double] = []
    public private(set) var entropies: [Double] = []
    public private(set) var marginals: [[Double]] = []
    /// Frames seen.
    var frames = 0

    public init(momentum: Double, count: Int) {
        (self.momentum, self.count) = (momentum, count)
    }

    /// I_p = entropy(M_p) - H_p per candidate.
    public var information: [Double] {
        zip(marginals, entropies).map { marginal, entropy in
            -marginal.reduce(0) { $0 + ($1 > 0 ? $1 * Foundation.log($1) : 0) } - entropy
        }
    }

    /// Every candidate on each of the first ceil(1 / momentum) frames, then one in turn.
    func nextMeasured() -> [Int] {
        Double(frames) < (1 / momentum).rounded(.up) ? Array(0..<count) : [frames % count]
    }

    func update(_ index: Int, shift: Double, entropy: Double, marginal: [Double]) {
        guard shifts.count == count else {
            (shifts, entropies, marginals) = (shifts + [shift], entropies + [entropy], marginals + [marginal])
            return
        }
        let m = momentum
        shifts[index] = (1 - m) * shifts[index] + m * shift
        entropies[index] = (1 - m) * entropies[index] + m * entropy
        marginals[index] = zip(marginals[index], marginal).map { (1 - m) * $0 + m * $1 }
    }

    public func state() throws -> StateDict {
        guard let classes = marginals.first?.count else { return StateDict([]) }
        return StateDict([
            ("values", try Tensor(shifts, shape: [count]).to(.float64)),
            ("entropies", try Tensor(entropies, shape: [count]).to(.float64)),
            ("marginals", try Tensor(marginals.flatMap { $0 }, shape: [count, classes]).to(.float64)),
            ("frames", try Tensor([Double(frames)], shape: [1]).to(.float64)),
        ])
    }
    public func loadState(_ state: StateDict) throws {
        let shifts = try state["values"].map { try $0.toArray(Double.self) } ?? []
        guard !shifts.isEmpty else { return try reset() }
        guard shifts.count == count else {
            throw TorchError("the saved state holds \(shifts.count) candidate shifts, the method has \(count) candidates")
        }
        guard let entropies = state["entropies"], let marginals = state["marginals"], marginals.rank == 2,
            marginals.shape[0] == count, entropies.count == count
        else {
            throw TorchError(
                "the saved state holds the candidates' shifts but not their predictions' statistics (saved by an "
                    + "earlier bn-select); start the stream again")
        }
        let classes = marginals.shape[1]
        let flat = try marginals.toArray(Double.self)
        self.shifts = shifts
        self.entropies = try entropies.toArray(Double.self)
        self.marginals = (0..<count).map { Array(flat[$0 * classes..<($0 + 1) * classes]) }
        frames = try state["frames"].map { Int(try $0.toArray(Double.self)[0]) } ?? 0
    }
    public func reset() throws { (shifts, entropies, marginals, frames) = ([], [], [], 0) }
}
