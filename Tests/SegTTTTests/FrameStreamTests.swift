import Foundation
import TestSupport
import Torch
import XCTest

@testable import SegTTT

/// Frames "f0", "f1", ... whose image holds its index; `failing` frames throw.
private struct NumberedFrames: SegmentationDataset, FrameNaming {
    let name = "numbered"
    let classNames = ["thing"]
    let count: Int
    var failing: Set<Int> = []
    /// Seconds each frame takes to "decode".
    var delay: TimeInterval = 0

    func sample(at index: Int) throws -> Sample {
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        if failing.contains(index) {
            throw DatasetError(path: "f\(index).png", problem: "is broken", fix: "replace it")
        }
        let image = try Tensor.full([3, 2, 2], value: Double(index % 256), dtype: .uint8)
        return Sample(name: "f\(index)", image: image, label: nil)
    }

    func frameName(at index: Int) -> String { "f\(index)" }
}

/// The same without names for frames that fail to load.
private struct AnonymousFrames: SegmentationDataset {
    let name = "anonymous"
    let classNames = ["thing"]
    let count = 3

    func sample(at index: Int) throws -> Sample {
        guard index != 1 else { throw DatasetError(path: "x", problem: "broken", fix: "none") }
        return Sample(name: "a\(index)", image: try Tensor.zeros([3, 1, 1], dtype: .uint8), label: nil)
    }
}

final class FrameStreamTests: ConfiguredTestCase {
    /// Every frame the stream gives, as (index, name, image value).
    private func drain(_ stream: FrameStream) throws -> [(Int, String, Int)] {
        var frames = [(Int, String, Int)]()
        while let frame = try stream.next() {
            frames.append((frame.index, frame.sample.name, try frame.sample.image.amax().itemInt()))
        }
        return frames
    }

    func testOrderIsPreservedWithAnyPrefetch() throws {
        let dataset = NumberedFrames(count: 25)
        for prefetch in [0, 1, 2, 5, 100] {
            let stream = try FrameStream(dataset, options: .init(prefetch: prefetch))
            let frames = try drain(stream)
            XCTAssertEqual(frames.map(\.0), Array(0..<25), "prefetch \(prefetch)")
            XCTAssertEqual(frames.map(\.1), (0..<25).map { "f\($0)" })
            XCTAssertEqual(frames.map(\.2), Array(0..<25))
            XCTAssertEqual(stream.delivered, 25)
            XCTAssertTrue(stream.skipped.isEmpty)
            XCTAssertNil(try stream.next(), "a finished stream stays finished")
        }
    }

    func testOrderIsPreservedWhenDecodingTimesVary() throws {
        // A slow decoder with a fast consumer, then the reverse.
        for delay in [0.002, 0] {
            let stream = try FrameStream(NumberedFrames(count: 12, delay: delay), options: .init(prefetch: 3))
            XCTAssertEqual(try drain(stream).map(\.0), Array(0..<12))
            XCTAssertGreaterThanOrEqual(stream.waitSeconds, stream.firstWaitSeconds)
            if delay > 0 { XCTAssertGreaterThan(stream.decodeSeconds, 0) }
        }
    }

    func testResumeFromAnIndex() throws {
        let dataset = NumberedFrames(count: 10)
        for prefetch in [0, 2] {
            let resumed = try FrameStream(dataset, options: .init(prefetch: prefetch, startIndex: 7))
            XCTAssertEqual(try drain(resumed).map(\.0), [7, 8, 9])
            let atEnd = try FrameStream(dataset, options: .init(prefetch: prefetch, startIndex: 10))
            XCTAssertNil(try atEnd.next())
        }
        XCTAssertThrowsError(try FrameStream(dataset, options: .init(startIndex: 11))) { error in
            XCTAssertTrue("\(error)".contains("start index 11"), "\(error)")
        }
        XCTAssertThrowsError(try FrameStream(dataset, options: .init(startIndex: -1)))
        XCTAssertThrowsError(try FrameStream(dataset, options: .init(prefetch: -1)))
    }

    func testBadFramesAreSkippedAndReported() throws {
        let dataset = NumberedFrames(count: 8, failing: [0, 3, 4, 7])
        for prefetch in [0, 1, 2] {
            let stream = try FrameStream(
                dataset, options: .init(prefetch: prefetch, skipBadFrames: true, startIndex: 0))
            XCTAssertEqual(try drain(stream).map(\.0), [1, 2, 5, 6], "prefetch \(prefetch)")
            XCTAssertEqual(stream.skipped.map(\.index), [0, 3, 4, 7])
            XCTAssertEqual(stream.skipped.map(\.name), ["f0", "f3", "f4", "f7"])
            XCTAssertEqual(stream.skipped[1].message, "f3.png: is broken; replace it")
            XCTAssertTrue(stream.skipped[1].description.contains("frame 3 (f3) skipped"))
        }
        // Resuming after a bad frame skips only what lies ahead.
        let resumed = try FrameStream(dataset, options: .init(prefetch: 2, skipBadFrames: true, startIndex: 4))
        XCTAssertEqual(try drain(resumed).map(\.0), [5, 6])
        XCTAssertEqual(resumed.skipped.map(\.index), [4, 7])
    }

    func testWithoutSkippingTheFirstBadFrameThrows() throws {
        let dataset = NumberedFrames(count: 6, failing: [2])
        for prefetch in [0, 2] {
            let stream = try FrameStream(dataset, options: .init(prefetch: prefetch))
            XCTAssertEqual(try stream.next()?.index, 0)
            XCTAssertEqual(try stream.next()?.index, 1)
            XCTAssertThrowsError(try stream.next()) { error in
                XCTAssertEqual(
                    error as? DatasetError, DatasetError(path: "f2.png", problem: "is broken", fix: "replace it"))
            }
            XCTAssertNil(try stream.next())
        }
    }

    func testFramesOfAnUnnamingDatasetAreReportedByIndex() throws {
        let stream = try FrameStream(AnonymousFrames(), options: .init(skipBadFrames: true))
        XCTAssertEqual(try drain(stream).map(\.1), ["a0", "a2"])
        XCTAssertEqual(stream.skipped.map(\.name), ["frame 1"])
    }

    func testDroppingAStreamStopsItsDecoderAndFreesItsFrames() throws {
        let before = Runtime.liveTensorCount
        do {
            let stream = try FrameStream(NumberedFrames(count: 10_000, delay: 0.001), options: .init(prefetch: 4))
            XCTAssertEqual(try stream.next()?.index, 0)
            XCTAssertEqual(try stream.next()?.index, 1)
        }
        // The decoder finishes its current frame, finds the stream cancelled and exits.
        let deadline = Date().addingTimeInterval(5)
        while Runtime.liveTensorCount != before && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertEqual(Runtime.liveTensorCount, before)

        let cancelled = try FrameStream(NumberedFrames(count: 100), options: .init(prefetch: 2))
        XCTAssertNotNil(try cancelled.next())
        cancelled.cancel()
        XCTAssertNil(try cancelled.next())
    }

    /// The prefetch measurement on CamVid: how long the consumer waits for frames when it
    /// does 30 ms of work per frame, with prefetch 0 and 2, with the work sleeping (as when
    /// the model runs on a GPU) or spinning on a CPU core. Prints the figures; asserts no
    /// timing. Run with SEGTTT_MEASURE_PREFETCH=1 swift test --filter testMeasurePrefetchOnCamVid
    func testMeasurePrefetchOnCamVid() throws {
        guard ProcessInfo.processInfo.environment["SEGTTT_MEASURE_PREFETCH"] == "1" else {
            throw XCTSkip("a measurement (about 30 s); set SEGTTT_MEASURE_PREFETCH=1 to run it")
        }
        let root = CamVidTests.sharedRoot
        guard FileManager.default.fileExists(atPath: root.appendingPathComponent("test.txt").path) else {
            throw XCTSkip("CamVid is not at \(root.path)")
        }
        let camvid = try CamVid(root: root)
        let work = 0.030
        print("prefetch measurement: CamVid test, \(camvid.count) frames, 30 ms of consumer work per frame")
        for spinning in [false, true] {
            for prefetch in [0, 2] {
                let stream = try FrameStream(camvid, options: .init(prefetch: prefetch))
                let started = Date()
                while try stream.next() != nil {
                    if spinning {
                        let end = Date().addingTimeInterval(work)
                        while Date() < end {}
                    } else {
                        Thread.sleep(forTimeInterval: work)
                    }
                }
                let total = Date().timeIntervalSince(started)
                let frames = Double(stream.delivered)
                print(
                    String(
                        format:
                            "  work %@, prefetch %d: decode %.2f ms/frame; consumer waited %.2f s in all "
                            + "(%.2f ms/frame; %.1f ms of it for the first frame); wall %.2f s",
                        spinning ? "spinning" : "sleeping", prefetch, 1000 * stream.decodeSeconds / frames,
                        stream.waitSeconds, 1000 * stream.waitSeconds / frames, 1000 * stream.firstWaitSeconds, total))
            }
        }
    }
}
