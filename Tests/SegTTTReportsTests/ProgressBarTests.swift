import Foundation
import XCTest

@testable import SegTTTReports

final class ProgressBarTests: XCTestCase {
    func testDurationIsMinutesAndSecondsOrHoursMinutesSeconds() {
        XCTAssertEqual(ProgressBar.duration(0), "00:00")
        XCTAssertEqual(ProgressBar.duration(41.9), "00:41")
        XCTAssertEqual(ProgressBar.duration(3599), "59:59")
        XCTAssertEqual(ProgressBar.duration(3600), "1:00:00")
        XCTAssertEqual(ProgressBar.duration(3725), "1:02:05")
        XCTAssertEqual(ProgressBar.duration(36_000 * 3 + 61), "30:01:01")
        XCTAssertEqual(ProgressBar.duration(.nan), "?")
        XCTAssertEqual(ProgressBar.duration(-1), "?")
        XCTAssertEqual(ProgressBar.duration(.infinity), "?")
    }

    func testLineFillsTheWidthWithTheBar() {
        let line = ProgressBar.line(
            label: "tent", done: 98, total: 233, elapsed: 41, fields: [("mIoU", "51.3")], width: 100)
        let bar = String(repeating: "█", count: 18) + String(repeating: " ", count: 25)
        XCTAssertEqual(line, "tent  42% |" + bar + "| 98/233 [00:41<00:56, 2.39 frame/s] mIoU 51.3")
        XCTAssertEqual(line.count, 100)
    }

    func testSpeedCountsOnlyFramesDoneSinceTheStart() {
        let line = ProgressBar.line(
            label: "ocl", done: 110, total: 200, elapsed: 5, fields: [("mIoU", "50.0"), ("loss", "0.41")], width: 80,
            startAt: 100)
        XCTAssertTrue(line.hasSuffix("| 110/200 [00:05<00:45, 2.00 frame/s] mIoU 50.0  loss 0.41"), line)
        XCTAssertTrue(line.hasPrefix("ocl  55% |"), line)
        XCTAssertEqual(line.count, 80)
    }

    func testSlowAndUnknownSpeeds() {
        XCTAssertEqual(
            ProgressBar.plainLine(label: "x", done: 1, total: 4, elapsed: 4, fields: []),
            "x  25% 1/4 [00:04<00:12, 4.00 s/frame]")
        XCTAssertEqual(
            ProgressBar.plainLine(label: "x", done: 0, total: 4, elapsed: 0, fields: [("mIoU", "-")]),
            "x   0% 0/4 [00:00<?, ? frame/s] mIoU -")
        XCTAssertEqual(
            ProgressBar.plainLine(label: "x", done: 3, total: 3, elapsed: 1.5, fields: [], unit: "image"),
            "x 100% 3/3 [00:01<00:00, 2.00 image/s]")
    }

    func testBarDrawsEighths() {
        XCTAssertEqual(ProgressBar.bar(0.42, width: 10), "████▏     ")
        XCTAssertEqual(ProgressBar.bar(0.5, width: 3), "█▌ ")
        XCTAssertEqual(ProgressBar.bar(1, width: 4), "████")
        XCTAssertEqual(ProgressBar.bar(0, width: 2), "  ")
    }

    func testTooLongLinesAreCutToTheWidth() {
        let line = ProgressBar.line(
            label: "x", done: 1, total: 2, elapsed: 1, fields: [("note", String(repeating: "n", count: 200))],
            width: 100)
        XCTAssertEqual(line.count, 100)
        XCTAssertTrue(line.hasPrefix("x  50% |█████     | 1/2 [00:01<00:01, 1.00 frame/s] note nnn"), line)
    }

    /// What a bar wrote to a file, after `body` drove it.
    func output(interactive: Bool, _ body: (ProgressBar) -> Void) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("progress-\(UUID().uuidString).txt")
        defer { try? FileManager.default.removeItem(at: url) }
        XCTAssertTrue(FileManager.default.createFile(atPath: url.path, contents: nil), url.path)
        let handle = try FileHandle(forWritingTo: url)
        body(ProgressBar(total: 20, label: "run", output: handle, interactive: interactive))
        try handle.close()
        return try String(contentsOf: url, encoding: .utf8)
    }

    func testLogOutputPrintsEachTenthOnce() throws {
        let text = try output(interactive: false) { bar in
            for done in 1...20 { bar.update(done: done, fields: [("mIoU", "50.0")]) }
            bar.finish(fields: [("mIoU", "50.0")])
        }
        XCTAssertFalse(text.contains("\r"))
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.count, 10)
        XCTAssertTrue(lines[0].hasPrefix("run  10% 2/20 ["), String(lines[0]))
        XCTAssertTrue(lines[9].hasPrefix("run 100% 20/20 ["), String(lines[9]))
        XCTAssertTrue(lines.allSatisfy { $0.hasSuffix("] mIoU 50.0") })
    }

    func testLogOutputAddsAFinalLineWhenItShowsSomethingNew() throws {
        let text = try output(interactive: false) { bar in
            bar.update(done: 5, fields: [])
            bar.finish(fields: [("mIoU", "48.2")])
            bar.finish(fields: [("mIoU", "0")])
        }
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        XCTAssertTrue(lines[1].hasPrefix("run  25% 5/20 ["), String(lines[1]))
        XCTAssertTrue(lines[1].hasSuffix("mIoU 48.2"), String(lines[1]))
    }

    func testInteractiveOutputRedrawsOneLineAndEndsIt() throws {
        let text = try output(interactive: true) { bar in
            bar.update(done: 1, fields: [("note", "a longer value")])
            bar.update(done: 20, fields: [("mIoU", "1")])
            bar.finish(fields: [("mIoU", "1")])
        }
        XCTAssertTrue(text.hasPrefix("\rrun   5% |"), text)
        XCTAssertTrue(text.hasSuffix("\n"))
        XCTAssertEqual(text.filter { $0 == "\n" }.count, 1)
        let draws = text.dropLast().split(separator: "\r")
        XCTAssertEqual(draws.count, 3)
        XCTAssertTrue(
            draws.allSatisfy { $0.count == ProgressBar.width }, draws.map { "\($0.count)" }.joined(separator: ","))
        XCTAssertTrue(draws[2].hasPrefix("run 100% |" + String(repeating: "█", count: 10)), String(draws[2]))
    }
}
