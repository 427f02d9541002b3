/// Every `step`th frame of a range of another dataset's frames: a held-out tail for
/// validation (step 1), or a stream seen at a lower frame rate (frames lowerBound,
/// lowerBound + step, ... below upperBound).
public struct DatasetSlice: SegmentationDataset {
    public let base: any SegmentationDataset
    public let range: Range<Int>
    public let step: Int

    /// - Precondition: `range` lies within `0..<base.count` and `step >= 1`.
    public init(_ base: any SegmentationDataset, range: Range<Int>, step: Int = 1) {
        precondition(range.lowerBound >= 0 && range.upperBound <= base.count, "slice \(range) outside 0..<\(base.count)")
        precondition(step >= 1, "slice step \(step) must be at least 1")
        self.base = base
        self.range = range
        self.step = step
    }

    /// "camvid[10..<20]", or "camvid[0..<233 by 2]" with a step.
    public var name: String {
        "\(base.name)[\(range.lowerBound)..<\(range.upperBound)\(step > 1 ? " by \(step)" : "")]"
    }
    public var classNames: [String] { base.classNames }
    /// ceil(range.count / step).
    public var count: Int { (range.count + step - 1) / step }

    public func sample(at index: Int) throws -> Sample { try base.sample(at: range.lowerBound + index * step) }
}
