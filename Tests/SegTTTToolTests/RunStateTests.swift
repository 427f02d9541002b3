import Foundation
import TestSupport
import XCTest

@testable import SegTTTTool

/// The saved states of a run (`RunState`): what --resume does with a folder that holds none,
/// an unreadable newest state, leftovers of interrupted writes, and an unreadable config.json.
final class RunStateTests: ConfiguredTestCase {
    func arguments(_ output: URL, _ extra: [String] = []) throws -> [String] {
        [
            "adapt", "--model", "espnet", "--checkpoint", try shippedModel().path, "--dataset", "synthetic:dusk:6:2",
            "--method", "tent", "--save-every", "2", "--no-predictions", "--output", output.path,
        ] + extra
    }

    func metrics(_ folder: URL) throws -> RunMetrics {
        try RunMetrics.read(folder.appendingPathComponent("metrics.json"))
    }

    func testResumeOfAFolderWithoutStateRunsTheStreamFromItsStart() throws {
        let folder = try temporaryFolder(self)
        let (plain, resumed) = (folder.appendingPathComponent("plain"), folder.appendingPathComponent("resumed"))
        XCTAssertNil(runTool(try arguments(plain)))
        XCTAssertNil(runTool(try arguments(resumed, ["--resume"])))
        XCTAssertEqual(try metrics(resumed).frames, 6)
        XCTAssertEqual(try metrics(resumed).confusionMatrix, try metrics(plain).confusionMatrix)
    }

    func testAnUnreadableNewestStateFallsBackToThePreviousOneAndLeftoversAreRemoved() throws {
        let folder = try temporaryFolder(self)
        let run = folder.appendingPathComponent("run")
        XCTAssertNil(runTool(try arguments(run)))
        let expected = try metrics(run)
        let state = RunState(folder: run)
        XCTAssertTrue(FileManager.default.fileExists(atPath: state.previous.path), "no previous state was kept")
        // A kill during a save: a cut newest state and Foundation's temporary file.
        let newest = try Data(contentsOf: state.newest)
        try newest.prefix(newest.count / 2).write(to: state.newest)
        let leftover = run.appendingPathComponent(".dat.nosync1a2b.Xy12Zw")
        try Data(count: 1000).write(to: leftover)
        try FileManager.default.removeItem(at: run.appendingPathComponent("metrics.json"))

        XCTAssertNil(runTool(try arguments(run, ["--resume"])))
        XCTAssertEqual(try metrics(run).confusionMatrix, expected.confusionMatrix)
        XCTAssertEqual(try metrics(run).frames, 6)
        XCTAssertFalse(FileManager.default.fileExists(atPath: leftover.path), "the interrupted write was left")
        // The newest state is whole again.
        XCTAssertNil(runTool(try arguments(run, ["--resume"])))
    }

    func testTwoUnreadableStatesNameBothFilesAndTheWayOut() throws {
        let folder = try temporaryFolder(self)
        let run = folder.appendingPathComponent("run")
        XCTAssertNil(runTool(try arguments(run)))
        let state = RunState(folder: run)
        for url in [state.newest, state.previous] { try Data("cut".utf8).write(to: url) }
        let (message, code) = report(runTool(try arguments(run, ["--resume"])))
        XCTAssertEqual(code, 1)
        XCTAssertTrue(message.contains(state.newest.path) && message.contains(state.previous.path), message)
        XCTAssertTrue(message.contains("delete both"), message)
        for url in [state.newest, state.previous] { try FileManager.default.removeItem(at: url) }
        XCTAssertNil(runTool(try arguments(run, ["--resume"])), "deleting the states did not let the run start over")
        XCTAssertEqual(try metrics(run).frames, 6)
    }

    func testResumeWithAnUnreadableConfigurationWritesNothing() throws {
        let folder = try temporaryFolder(self)
        let run = folder.appendingPathComponent("run")
        XCTAssertNil(runTool(try arguments(run)))
        let config = run.appendingPathComponent("config.json")
        try Data("{\"method\": ".utf8).write(to: config)
        let (message, code) = report(runTool(try arguments(run, ["--resume", "--lr", "0.5"])))
        XCTAssertEqual(code, 1)
        XCTAssertTrue(message.contains(config.path), message)
        XCTAssertEqual(try Data(contentsOf: config), Data("{\"method\": ".utf8), "config.json was overwritten")
    }

    func testAFolderDatasetFileWhoseNameIsNotUTF8IsNamedAsSuch() throws {
        let folder = try temporaryFolder(self)
        let frames = folder.appendingPathComponent("frames")
        for sub in ["images", "labels"] {
            try FileManager.default.createDirectory(
                at: frames.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        try Data(#"{"classes": ["sky", "road"]}"#.utf8).write(to: frames.appendingPathComponent("classes.json"))
        // images/caf\xE9.png and labels/caf\xE9.png, named in latin-1.
        for sub in ["images", "labels"] {
            var bytes = Array(frames.appendingPathComponent(sub).path.utf8) + Array("/caf".utf8) + [0xE9]
                + Array(".png".utf8) + [0]
            let descriptor = bytes.withUnsafeMutableBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_CREAT | O_WRONLY, 0o644) }
            }
            XCTAssertGreaterThanOrEqual(descriptor, 0)
            close(descriptor)
        }
        let (message, code) = report(
            runTool([
                "adapt", "--model", "espnet", "--checkpoint", try shippedModel().path, "--dataset",
                "folder:" + frames.path, "--method", "source", "--output", folder.appendingPathComponent("out").path,
            ]))
        XCTAssertEqual(code, 1)
        XCTAssertTrue(message.contains("not valid UTF-8") && message.contains("caf\u{FFFD}.png"), message)
    }
}
