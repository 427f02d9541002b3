/// The domain of each frame of a stream whose domain changes (a corruption schedule), so a
/// run can report each domain apart and reset where it changes.
public protocol DomainLabelling {
    /// The domain of frame `index`, e.g. "fog:3" or "clean".
    func domain(at index: Int) -> String
}

extension CorruptedDataset: DomainLabelling {
    public func domain(at index: Int) -> String { corruption(at: index)?.description ?? "clean" }
}

extension DatasetSlice: DomainLabelling {
    /// The base stream's domain of the frame, or "all" when the base has none.
    public func domain(at index: Int) -> String {
        (base as? DomainLabelling)?.domain(at: range.lowerBound + index * step) ?? "all"
    }
}

/// A stream played `rounds` times over, the continual benchmarks' protocol (CoTTA's ten rounds
/// of a corruption schedule): frame `r * base.count + i` is the base stream's frame i in round r.
public struct RepeatedDataset: SegmentationDataset, FrameNaming, DomainLabelling {
    public let base: any SegmentationDataset
    public let rounds: Int

    /// - Precondition: rounds >= 1.
    public init(_ base: any SegmentationDataset, rounds: Int) {
        precondition(rounds >= 1, "a stream is played at least once")
        self.base = base
        self.rounds = rounds
    }

    public var name: String { "\(base.name) x\(rounds) rounds" }
    public var classNames: [String] { base.classNames }
    public var count: Int { base.count * rounds }

    /// The round of frame `index`, from 0.
    public func round(at index: Int) -> Int { index / Swift.max(1, base.count) }

    public func sample(at index: Int) throws -> Sample {
        var sample = try base.sample(at: index % base.count)
        if rounds > 1 { sample.name = "round\(round(at: index) + 1)/\(sample.name)" }
        return sample
    }

    public func frameName(at index: Int) -> String {
        let name = (base as? FrameNaming)?.frameName(at: index % base.count) ?? "frame \(index % base.count)"
        return rounds > 1 ? "round \(round(at: index) + 1), \(name)" : name
    }

    public func domain(at index: Int) -> String {
        (base as? DomainLabelling)?.domain(at: index % base.count) ?? "all"
    }
}
