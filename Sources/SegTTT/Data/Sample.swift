import Torch

/// Label value that marks a pixel as not evaluated (void, unlabelled, out of protocol).
public let ignoreLabel = 255

/// One frame of a segmentation stream.
public struct Sample {
    /// A name unique within the dataset (the file stem, e.g. "0001TP_008550").
    public var name: String
    /// RGB image [3, H, W], uint8.
    public var image: Tensor
    /// Class index per pixel [H, W], int64, in the dataset's protocol; `ignoreLabel` where void.
    public var label: Tensor?

    public init(name: String, image: Tensor, label: Tensor?) {
        self.name = name
        self.image = image
        self.label = label
    }
}

/// A finite, ordered stream of labelled frames.
public protocol SegmentationDataset {
    /// Short name, e.g. "camvid".
    var name: String { get }
    /// Class names of the label protocol, index = label value.
    var classNames: [String] { get }
    /// Number of frames.
    var count: Int { get }
    /// Frame `index` (0 ..< count), always the same for the same index.
    func sample(at index: Int) throws -> Sample
}
