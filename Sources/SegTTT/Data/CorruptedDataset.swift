import Foundation
import Torch

/// A stream whose corruption changes over time (continual shift): segments of frames, each
/// with one corruption (or none), played in order and repeated from the start when the
/// stream is longer than the schedule.
public struct CorruptionSchedule: Equatable, Sendable, CustomStringConvertible {
    /// `frameCount` consecutive frames under `corruption` (nil: clean frames).
    public struct Segment: Equatable, Sendable {
        public var corruption: Corruption?
        public var frameCount: Int

        public init(_ corruption: Corruption?, frameCount: Int) {
            self.corruption = corruption
            self.frameCount = frameCount
        }
    }

    public let segments: [Segment]
    /// Frames in one pass through the segments.
    public let period: Int

    /// - Throws: `CorruptionError.invalidSchedule` when there are no segments or a frame
    ///   count is below 1.
    public init(_ segments: [Segment]) throws {
        guard !segments.isEmpty else { throw CorruptionError.invalidSchedule("no segments") }
        for segment in segments where segment.frameCount < 1 {
            let name = segment.corruption?.description ?? "clean"
            throw CorruptionError.invalidSchedule("segment \(name) has \(segment.frameCount) frames, needs at least 1")
        }
        self.segments = segments
        self.period = segments.reduce(0) { $0 + $1.frameCount }
    }

    /// One corruption on every frame.
    public init(constant corruption: Corruption) {
        self.segments = [Segment(corruption, frameCount: 1)]
        self.period = 1
    }

    /// Parses comma-separated segments `NAME:SEVERITY@FRAMES` or `clean@FRAMES`, e.g.
    /// "fog:3@100,clean@50,night:5@100"; a single `NAME:SEVERITY` (no '@') is a constant
    /// corruption.
    public init(parsing text: String) throws {
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard !items.isEmpty, !items.contains(where: \.isEmpty) else {
            throw CorruptionError.invalidSchedule("'\(text)' has an empty segment")
        }
        if items.count == 1, !items[0].contains("@") {
            self.init(constant: try Corruption(parsing: items[0]))
            return
        }
        var segments: [Segment] = []
        for item in items {
            let parts = item.split(separator: "@", omittingEmptySubsequences: false)
            guard parts.count == 2, let frames = Int(parts[1].trimmingCharacters(in: .whitespaces)) else {
                throw CorruptionError.invalidSchedule("segment '\(item)' has no frame count after '@'")
            }
            let name = parts[0].trimmingCharacters(in: .whitespaces)
            let corruption = Corruption.normalizedName(name) == "clean" ? nil : try Corruption(parsing: name)
            segments.append(Segment(corruption, frameCount: frames))
        }
        try self.init(segments)
    }

    /// The corruption of frame `index` (nil: clean).
    public func corruption(at index: Int) -> Corruption? {
        var position = ((index % period) + period) % period
        for segment in segments {
            if position < segment.frameCount { return segment.corruption }
            position -= segment.frameCount
        }
        return nil  // unreachable: position < period
    }

    /// "fog:3@100,clean@50"; a constant schedule prints as its corruption.
    public var description: String {
        if segments.count == 1, let only = segments[0].corruption { return only.description }
        return segments.map { "\($0.corruption?.description ?? "clean")@\($0.frameCount)" }.joined(separator: ",")
    }
}

/// Any dataset with its images corrupted: frame i gets `schedule.corruption(at: i)`, seeded
/// by (i, seed), so the stream is the same on every run with the same seed. Labels are
/// unchanged.
public struct CorruptedDataset: SegmentationDataset, FrameNaming {
    public let base: SegmentationDataset
    public let schedule: CorruptionSchedule
    public let seed: UInt64

    public init(_ base: SegmentationDataset, schedule: CorruptionSchedule, seed: UInt64 = 0) {
        self.base = base
        self.schedule = schedule
        self.seed = seed
    }

    /// Every frame under one corruption.
    public init(_ base: SegmentationDataset, corruption: Corruption, seed: UInt64 = 0) {
        self.init(base, schedule: CorruptionSchedule(constant: corruption), seed: seed)
    }

    /// e.g. "cityscapes-val[gaussian_noise:3]"
    public var name: String { "\(base.name)[\(schedule)]" }
    public var classNames: [String] { base.classNames }
    public var count: Int { base.count }

    /// The corruption of frame `index` (nil: clean).
    public func corruption(at index: Int) -> Corruption? { schedule.corruption(at: index) }

    /// The base dataset's name for frame `index`.
    public func frameName(at index: Int) -> String {
        (base as? FrameNaming)?.frameName(at: index) ?? "frame \(index)"
    }

    public func sample(at index: Int) throws -> Sample {
        var sample = try base.sample(at: index)
        if let corruption = schedule.corruption(at: index) {
            sample.image = try corruption.apply(image: sample.image, frameIndex: index, seed: seed)
        }
        return sample
    }
}
