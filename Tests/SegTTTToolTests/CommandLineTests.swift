import ArgumentParser
import SegTTT
import TestSupport
import XCTest

@testable import SegTTTTool

/// Help, flag errors and exit codes of every command.
final class CommandLineTests: ConfiguredTestCase {
    func testHelpOfEveryCommandListsItsOptions() {
        let expected: [String: [String]] = [
            "demo": ["--frames", "--styles", "--methods", "--train", "--output"],
            "adapt": [
                "--model", "--checkpoint", "--dataset", "--corruption", "--method", "--lr", "--bn-prior",
                "--mask-ratio", "--device", "--threads", "--limit", "--seed", "--output", "--config", "--resume",
                "--overlays",
            ],
            "compare": ["--methods", "--model", "--dataset", "--output", "--resume"],
            "train": ["--dataset", "--holdout", "--iterations", "--batch-size", "--lr", "--output"],
            "info": ["<checkpoint>", "--tensors"],
        ]
        for (command, options) in expected {
            let (message, code) = report(runTool([command, "--help"]))
            XCTAssertEqual(code, 0, command)
            XCTAssertTrue(message.contains("USAGE: segttt \(command)"), "\(command): \(message)")
            for option in options { XCTAssertTrue(message.contains(option), "\(command) --help lacks \(option)") }
        }
    }

    func testNoSubcommandSuggestsTheDemo() throws {
        XCTAssertNil(runTool([]))
        XCTAssertTrue(SegTTTCommand.helpMessage().contains("segttt demo"))
    }

    func testUnknownFlagIsAUsageError() {
        let (message, code) = report(runTool(["adapt", "--learning-rate", "1"]))
        XCTAssertEqual(code, ExitCode.validationFailure.rawValue)
        XCTAssertTrue(message.contains("--learning-rate"), message)
    }

    func testMalformedNumberNamesTheOption() {
        let (message, code) = report(runTool(["adapt", "--lr", "fast"]))
        XCTAssertEqual(code, ExitCode.validationFailure.rawValue)
        XCTAssertTrue(message.contains("--lr"), message)
    }

    func testMissingModelIsOneClearLineAndExitCodeOne() {
        let (message, code) = report(runTool(["adapt", "--dataset", "synthetic:dusk:2"]))
        XCTAssertEqual(code, 1)
        XCTAssertTrue(message.contains("missing --model"), message)
    }

    func testMissingCheckpointFileNamesIt() {
        let (message, code) = report(
            runTool(["adapt", "--model", "espnet", "--checkpoint", "/nonexistent/w.pth", "--dataset", "synthetic:dusk:2"]))
        XCTAssertEqual(code, 1)
        XCTAssertTrue(message.contains("/nonexistent/w.pth") && message.contains("--checkpoint"), message)
    }

    func testCheckpointOfAnotherFamilySaysCheckModel() throws {
        let model = try shippedModel()
        let folder = try temporaryFolder(self)
        let (message, code) = report(
            runTool([
                "adapt", "--model", "deeplabv2", "--checkpoint", model.path, "--dataset", "synthetic:dusk:2",
                "--output", folder.path,
            ]))
        XCTAssertEqual(code, 1)
        XCTAssertTrue(message.contains(model.path) && message.contains("--model"), message)
    }

    func testUnknownMethodListsTheValidOnes() {
        let (message, code) = report(
            runTool(["adapt", "--model", "espnet", "--checkpoint", "w.pth", "--dataset", "x", "--method", "ttt"]))
        XCTAssertEqual(code, ExitCode.validationFailure.rawValue)
        XCTAssertTrue(message.contains("--method 'ttt'") && message.contains(Methods.validNames), message)
    }

    func testDatasetOfTheWrongLayoutNamesThePath() throws {
        let model = try shippedModel()
        let folder = try temporaryFolder(self)
        let (message, code) = report(
            runTool([
                "adapt", "--model", "espnet", "--checkpoint", model.path, "--dataset", "camvid:\(folder.path)",
                "--output", folder.appendingPathComponent("out").path,
            ]))
        XCTAssertEqual(code, 1)
        XCTAssertTrue(message.contains(folder.path), message)
    }

    func testInfoOnAFileThatIsNoCheckpoint() throws {
        let folder = try temporaryFolder(self)
        let file = folder.appendingPathComponent("notes.txt")
        try "not weights".write(to: file, atomically: true, encoding: .utf8)
        let (message, code) = report(runTool(["info", file.path]))
        XCTAssertEqual(code, 1)
        XCTAssertTrue(message.contains(file.path), message)
    }
}
