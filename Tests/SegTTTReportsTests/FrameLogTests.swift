import Foundation
import XCTest

@testable import SegTTT
@testable import SegTTTReports

final class FrameLogTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("framelog-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try FileManager.default.removeItem(at: folder)
    }

    func record(
        _ index: Int, name: String? = nil, losses: [String: Double] = [:], frameIoU: Double? = nil,
        seconds: Double = 0.5, nonFinite: Bool = false
    ) -> FrameRecord {
        FrameRecord(
            index: index, name: name ?? "frame\(index).png", losses: losses, frameIoU: frameIoU, seconds: seconds,
            nonFiniteLoss: nonFinite)
    }

    func contents(_ url: URL) throws -> String { try String(contentsOf: url, encoding: .utf8) }

    func testHeaderAndRows() throws {
        let url = folder.appendingPathComponent("frames.csv")
        let log = try FrameLog(url: url, lossNames: ["entropy", "contrastive"])
        try log.append(
            record(0, losses: ["entropy": 0.5, "contrastive": 1.25], frameIoU: 0.512345, seconds: 0.25),
            runningIoU: 0.5)
        try log.append(record(1, losses: ["entropy": 0.123456789], seconds: 1.0, nonFinite: true), runningIoU: nil)
        log.close()
        XCTAssertEqual(
            try contents(url),
            """
            frame,name,entropy,contrastive,frame_miou,running_miou,seconds,non_finite_loss
            0,frame0.png,0.5,1.25,51.2345,50.0000,0.2500,false
            1,frame1.png,0.123457,,,,1.0000,true

            """)
        XCTAssertThrowsError(try log.append(record(2), runningIoU: nil))
    }

    func testRowsReachTheFileAsTheyAreAppended() throws {
        let url = folder.appendingPathComponent("frames.csv")
        let log = try FrameLog(url: url, lossNames: [])
        try log.append(record(0), runningIoU: .nan)
        XCTAssertEqual(try FrameLog.read(url).map { $0["frame"] }, ["0"])
        XCTAssertEqual(try FrameLog.read(url).first?["running_miou"], "")
        log.close()
    }

    func testNamesWithCommasQuotesAndLineBreaksAreQuotedAndReadBack() throws {
        let url = folder.appendingPathComponent("frames.csv")
        let names = [#"a,b"#, #"say "hi""#, "two\nlines", "plain"]
        let log = try FrameLog(url: url, lossNames: ["loss, total"])
        for (index, name) in names.enumerated() { try log.append(record(index, name: name), runningIoU: nil) }
        log.close()
        let lines = try contents(url).components(separatedBy: "\n")
        XCTAssertEqual(lines[0], #"frame,name,"loss, total",frame_miou,running_miou,seconds,non_finite_loss"#)
        XCTAssertEqual(lines[1], #"0,"a,b",,,,0.5000,false"#)
        XCTAssertEqual(lines[2], #"1,"say ""hi""",,,,0.5000,false"#)
        XCTAssertEqual(lines[3], #"2,"two"#)
        let rows = try FrameLog.read(url)
        XCTAssertEqual(rows.map { $0["name"] }, names)
        XCTAssertEqual(rows.map { $0["loss, total"] }, ["", "", "", ""])
        XCTAssertEqual(rows.map { $0["frame"] }, ["0", "1", "2", "3"])
    }

    func testResumingKeepsTheRowsBeforeThePositionAndDropsLaterAndCutRows() throws {
        let url = folder.appendingPathComponent("frames.csv")
        let first = try FrameLog(url: url, lossNames: ["entropy"])
        for index in 0..<5 { try first.append(record(index, losses: ["entropy": 1]), runningIoU: 0.25) }
        first.close()
        // A run killed while writing leaves a row cut short.
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("5,frame5.png,0.7".utf8))
        try handle.close()

        let resumed = try FrameLog(url: url, lossNames: ["entropy"], resumeAt: 3)
        XCTAssertEqual(try FrameLog.read(url).map { $0["frame"] }, ["0", "1", "2"])
        try resumed.append(record(3, losses: ["entropy": 2]), runningIoU: 0.3)
        resumed.close()
        let rows = try FrameLog.read(url)
        XCTAssertEqual(rows.map { $0["frame"] }, ["0", "1", "2", "3"])
        XCTAssertEqual(rows.map { $0["entropy"] }, ["1", "1", "1", "2"])
        XCTAssertEqual(rows.last?["running_miou"], "30.0000")
        XCTAssertTrue(try contents(url).hasPrefix("frame,name,entropy,frame_miou,"))
    }

    func testResumingWithoutAFileStartsOne() throws {
        let url = folder.appendingPathComponent("frames.csv")
        let log = try FrameLog(url: url, lossNames: [], resumeAt: 10)
        try log.append(record(10), runningIoU: nil)
        log.close()
        XCTAssertEqual(try FrameLog.read(url).map { $0["frame"] }, ["10"])
    }

    func testStartingWithoutResumeReplacesAnOldLog() throws {
        let url = folder.appendingPathComponent("frames.csv")
        let old = try FrameLog(url: url, lossNames: [])
        try old.append(record(0), runningIoU: nil)
        old.close()
        try FrameLog(url: url, lossNames: []).close()
        XCTAssertEqual(try FrameLog.read(url).count, 0)
    }

    func testResumingALogWithOtherColumnsIsAnErrorNamingTheFile() throws {
        let url = folder.appendingPathComponent("frames.csv")
        let tent = try FrameLog(url: url, lossNames: ["entropy"])
        try tent.append(record(0, losses: ["entropy": 1]), runningIoU: nil)
        tent.close()
        XCTAssertThrowsError(try FrameLog(url: url, lossNames: ["contrastive"], resumeAt: 1)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(url.path), message)
            XCTAssertTrue(message.contains("fresh output folder"), message)
            XCTAssertTrue(message.contains("contrastive"), message)
        }
        // The old log is left as it was.
        XCTAssertEqual(try FrameLog.read(url).map { $0["entropy"] }, ["1"])
    }

    func testReadHandlesCRLFAndShortRows() throws {
        let url = folder.appendingPathComponent("other.csv")
        try Data("a,b,c\r\n1,\"x\r\ny\",3\r\n4\r\n".utf8).write(to: url)
        let rows = try FrameLog.read(url)
        XCTAssertEqual(rows, [["a": "1", "b": "x\r\ny", "c": "3"], ["a": "4"]])
    }

    func testCSVRecordsReportTheirBytesAndWhetherTheyEnd() {
        let records = CSV.records(in: Array("h\n\"1\n2\",x\nlast".utf8))
        XCTAssertEqual(records.map(\.fields), [["h"], ["1\n2", "x"], ["last"]])
        XCTAssertEqual(records.map(\.range), [0..<2, 2..<10, 10..<14])
        XCTAssertEqual(records.map(\.complete), [true, true, false])
    }
}
