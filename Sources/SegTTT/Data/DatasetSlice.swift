/// A contiguous range of another dataset's frames, e.g. a held-out tail for validation.
public struct DatasetSlice: SegmentationDataset {
    public let base: any SegmentationDataset
    public let range: Range<Int>

    /// - Precondition: `range` lies within `0..<base.count`.
    public init(_ base: any SegmentationDataset, range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= base.count, "slice \(range) outside 0..<\(base.count)")
        self.base = base
        self.range = range
    }

    /// "camvid[10..<20]".
    public var name: String { "\(base.name)[\(range.lowerBound)..<\(range.upperBound)]" }
    public var classNames: [String] { base.classNames }
    public var count: Int { range.count }

    public func sample(at index: Int) throws -> Sample { try base.sample(at: range.lowerBound + index) }
}
