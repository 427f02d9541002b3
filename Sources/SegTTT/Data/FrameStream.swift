import Foundation
import Torch

/// A dataset that can name a frame without loading it, so that a frame that fails to load
/// can still be reported by name.
public protocol FrameNaming {
    /// The name of frame `index` (its file stem), even when its files are damaged.
    func frameName(at index: Int) -> String
}

/// Iterates a `SegmentationDataset` in order, decoding up to `prefetch` frames ahead on a
/// background thread so that the consumer (the model) rarely waits for files.
///
/// ```swift
/// let stream = try FrameStream(camvid, options: .init(skipBadFrames: true))
/// while let frame = try stream.next() { ... frame.index, frame.sample ... }
/// print(stream.skipped, stream.waitSeconds)
/// ```
///
/// The dataset's `sample(at:)` runs on the background thread, one frame at a time, so it
/// must be safe to call from another thread than the consumer's (the datasets of this
/// module read files and share no mutable state). Samples are handed over under a lock;
/// the consumer owns them once `next()` returns. With `prefetch` 0 frames are decoded in
/// `next()` itself. Not itself thread-safe: one consumer calls `next()`.
public final class FrameStream {
    /// How a stream runs.
    public struct Options: Sendable {
        /// Decoded frames held ready ahead of the consumer (a frame being decoded comes on
        /// top); 0 decodes in `next()` on the consumer's thread.
        public var prefetch: Int
        /// Skip frames that fail to load (missing, corrupt, label size mismatch) and report
        /// them in `skipped`, instead of throwing.
        public var skipBadFrames: Bool
        /// First frame index, to resume a stream.
        public var startIndex: Int

        public init(prefetch: Int = 2, skipBadFrames: Bool = false, startIndex: Int = 0) {
            self.prefetch = prefetch
            self.skipBadFrames = skipBadFrames
            self.startIndex = startIndex
        }
    }

    /// A frame of the stream and its index in the dataset.
    public struct Frame {
        public let index: Int
        public let sample: Sample
    }

    /// A frame that was skipped, and why.
    public struct SkippedFrame: Equatable, Sendable, CustomStringConvertible {
        public let index: Int
        /// The frame's name (from `FrameNaming`), or "frame INDEX".
        public let name: String
        /// The error's message.
        public let message: String

        public var description: String { "frame \(index) (\(name)) skipped: \(message)" }
    }

    public let options: Options
    /// Number of frames of the dataset.
    public let datasetCount: Int
    /// Frames skipped so far, in stream order (with `skipBadFrames`).
    public private(set) var skipped: [SkippedFrame] = []
    /// Frames returned by `next()` so far.
    public private(set) var delivered = 0
    /// Seconds the consumer spent in `next()` waiting for a frame to be ready (with
    /// `prefetch` 0: decoding it).
    public private(set) var waitSeconds = 0.0
    /// Of `waitSeconds`, the wait for the first frame (the pipeline cannot hide that one).
    public private(set) var firstWaitSeconds = 0.0

    /// Seconds spent in the dataset's `sample(at:)` so far, on whichever thread ran it.
    public var decodeSeconds: Double {
        pipeline?.decodeSeconds ?? syncDecodeSeconds
    }

    private let dataset: any SegmentationDataset
    private let pipeline: Pipeline?
    private var nextIndex: Int
    private var finished = false
    private var syncDecodeSeconds = 0.0

    /// Starts streaming `dataset` (and, with `prefetch` > 0, its background decoding).
    public init(_ dataset: any SegmentationDataset, options: Options = Options()) throws {
        guard options.prefetch >= 0 else {
            throw DatasetError(
                path: dataset.name, problem: "prefetch \(options.prefetch) is negative",
                fix: "pass 0 (decode in next()) or more frames")
        }
        guard (0...dataset.count).contains(options.startIndex) else {
            throw DatasetError(
                path: dataset.name, problem: "start index \(options.startIndex) is outside 0...\(dataset.count)",
                fix: "resume from an index of the stream")
        }
        self.options = options
        self.dataset = dataset
        self.datasetCount = dataset.count
        self.nextIndex = options.startIndex
        if options.prefetch > 0 {
            let pipeline = Pipeline(dataset: dataset, capacity: options.prefetch)
            self.pipeline = pipeline
            let start = options.startIndex
            let stopOnError = !options.skipBadFrames
            let thread = Thread { pipeline.run(from: start, stopOnError: stopOnError) }
            thread.name = "segttt.framestream"
            thread.stackSize = 8 << 20
            thread.start()
        } else {
            self.pipeline = nil
        }
    }

    deinit {
        pipeline?.cancel()
    }

    /// The next frame in order; nil at the end. Throws the frame's error unless
    /// `skipBadFrames` (after an error the stream is finished).
    public func next() throws -> Frame? {
        while !finished {
            let started = DispatchTime.now().uptimeNanoseconds
            let item = pipeline?.take() ?? loadNow()
            let waited = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            waitSeconds += waited
            if delivered == 0 && skipped.isEmpty { firstWaitSeconds += waited }
            switch item {
            case .frame(let index, let sample):
                delivered += 1
                return Frame(index: index, sample: sample)
            case .failed(let index, let error):
                if options.skipBadFrames {
                    skipped.append(SkippedFrame(index: index, name: name(of: index), message: "\(error)"))
                } else {
                    finish()
                    throw error
                }
            case .end:
                finish()
            }
        }
        return nil
    }

    /// Stops the background decoding; `next()` then returns nil.
    public func cancel() {
        finish()
    }

    private func finish() {
        finished = true
        pipeline?.cancel()
    }

    private func name(of index: Int) -> String {
        (dataset as? any FrameNaming)?.frameName(at: index) ?? "frame \(index)"
    }

    /// Without prefetch: loads the next frame on this thread.
    private func loadNow() -> Pipeline.Item {
        guard nextIndex < datasetCount else { return .end }
        let index = nextIndex
        nextIndex += 1
        let started = DispatchTime.now().uptimeNanoseconds
        defer { syncDecodeSeconds += Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 }
        do {
            return .frame(index, try dataset.sample(at: index))
        } catch {
            return .failed(index, error)
        }
    }
}

/// The bounded queue between the decoding thread and the consumer.
///
/// `@unchecked Sendable`: every mutable field is read and written under `condition`; the
/// dataset is used by the decoding thread only; a Sample crosses threads once, through the
/// queue, and is not touched by the decoding thread after it is queued.
private final class Pipeline: @unchecked Sendable {
    enum Item {
        case frame(Int, Sample)
        case failed(Int, Error)
        case end
    }

    private let dataset: any SegmentationDataset
    private let capacity: Int
    private let condition = NSCondition()
    private var queue: [Item] = []
    private var cancelled = false
    private var decodeTotal = 0.0

    init(dataset: any SegmentationDataset, capacity: Int) {
        self.dataset = dataset
        self.capacity = capacity
    }

    /// Seconds spent decoding so far.
    var decodeSeconds: Double {
        condition.lock()
        defer { condition.unlock() }
        return decodeTotal
    }

    /// The decoding thread's loop: decodes frames from `start` on while the queue has room,
    /// ends with `.end` (or after the first failure when `stopOnError`).
    func run(from start: Int, stopOnError: Bool) {
        let count = dataset.count
        var index = start
        while index < count {
            condition.lock()
            while queue.count >= capacity && !cancelled { condition.wait() }
            let stop = cancelled
            condition.unlock()
            if stop { return }

            let started = DispatchTime.now().uptimeNanoseconds
            let item: Item
            do {
                item = .frame(index, try dataset.sample(at: index))
            } catch {
                item = .failed(index, error)
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            put(item, seconds: seconds)
            if case .failed = item, stopOnError { return }
            index += 1
        }
        put(.end, seconds: 0)
    }

    private func put(_ item: Item, seconds: Double) {
        condition.lock()
        decodeTotal += seconds
        if !cancelled { queue.append(item) }
        condition.broadcast()
        condition.unlock()
    }

    /// The next item, waiting until the decoding thread has one.
    func take() -> Item {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && !cancelled { condition.wait() }
        guard !queue.isEmpty else { return .end }
        // At most capacity + 1 items: removing the first is cheap, and frees its slot.
        let item = queue.removeFirst()
        condition.broadcast()
        return item
    }

    /// Makes the decoding thread stop after its current frame and drops queued frames.
    func cancel() {
        condition.lock()
        cancelled = true
        queue.removeAll()
        condition.broadcast()
        condition.unlock()
    }
}
