/// The frames of another dataset, decoded or rendered once and kept in memory, for streams
/// read many times over (source training reads every frame once per epoch).
public struct InMemoryDataset: SegmentationDataset {
    public let name: String
    public let classNames: [String]
    public let samples: [Sample]
    public var count: Int { samples.count }

    /// Reads every frame of `dataset` now.
    public init(_ dataset: any SegmentationDataset) throws {
        name = dataset.name
        classNames = dataset.classNames
        samples = try (0..<dataset.count).map { try dataset.sample(at: $0) }
    }

    public func sample(at index: Int) throws -> Sample { samples[index] }
}
