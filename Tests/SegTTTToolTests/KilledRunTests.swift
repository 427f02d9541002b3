import Foundation
import TestSupport
import XCTest

@testable import SegTTTTool

/// The built `segttt` executable, killed with SIGKILL or stopped by SIGINT and SIGTERM
/// mid-stream, and resumed; and given arguments that are not UTF-8.
final class KilledRunTests: ConfiguredTestCase {
    func launch(_ executable: URL, _ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    func testSIGKILLedRunResumesToTheSameMetrics() throws {
        let tool = try builtTool()
        let model = try shippedModel()
        let folder = try temporaryFolder(self)
        func arguments(_ output: URL) -> [String] {
            [
                "adapt", "--model", "espnet", "--checkpoint", model.path, "--dataset", "synthetic:night:40",
                "--method", "ocl", "--threads", "1", "--save-every", "3", "--no-predictions", "--output", output.path,
            ]
        }
        let killed = folder.appendingPathComponent("killed")
        let run = try launch(tool, arguments(killed))
        let state = killed.appendingPathComponent("state.safetensors")
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: state.path) && run.isRunning && Date() < deadline {
            usleep(20_000)
        }
        let interrupted = run.isRunning
        kill(run.processIdentifier, SIGKILL)
        run.waitUntilExit()
        let resumed = try launch(tool, arguments(killed) + ["--resume"])
        resumed.waitUntilExit()
        XCTAssertEqual(resumed.terminationStatus, 0)

        let whole = folder.appendingPathComponent("whole")
        let uninterrupted = try launch(tool, arguments(whole))
        uninterrupted.waitUntilExit()
        XCTAssertEqual(uninterrupted.terminationStatus, 0)

        let a = try RunMetrics.read(whole.appendingPathComponent("metrics.json"))
        let b = try RunMetrics.read(killed.appendingPathComponent("metrics.json"))
        XCTAssertTrue(interrupted, "the run finished before it could be killed; the test proved nothing")
        XCTAssertEqual(b.frames, 40)
        XCTAssertEqual(a.confusionMatrix, b.confusionMatrix)
        XCTAssertEqual(a.meanIoU, b.meanIoU)
    }

    func testSIGINTAndSIGTERMSaveTheStateAndTheResumedRunEndsWithTheUninterruptedMetrics() throws {
        let tool = try builtTool()
        let model = try shippedModel()
        let folder = try temporaryFolder(self)
        // No periodic save before the end: a state found after the signal was saved for it.
        func arguments(_ output: URL) -> [String] {
            [
                "adapt", "--model", "espnet", "--checkpoint", model.path, "--dataset", "synthetic:fog:30",
                "--method", "tent", "--threads", "1", "--save-every", "1000", "--no-predictions",
                "--output", output.path,
            ]
        }
        let whole = folder.appendingPathComponent("whole")
        let uninterrupted = try launch(tool, arguments(whole))
        uninterrupted.waitUntilExit()
        XCTAssertEqual(uninterrupted.terminationStatus, 0)
        let expected = try RunMetrics.read(whole.appendingPathComponent("metrics.json"))

        for signal in [SIGINT, SIGTERM] {
            let stopped = folder.appendingPathComponent("stopped-\(signal)")
            let run = try launch(tool, arguments(stopped))
            let frames = stopped.appendingPathComponent("frames.csv")
            let deadline = Date().addingTimeInterval(120)
            // Two frames done (header and two rows), then the signal.
            while ((try? String(contentsOf: frames, encoding: .utf8))?.split(separator: "\n").count ?? 0) < 3
                && run.isRunning && Date() < deadline
            {
                usleep(20_000)
            }
            XCTAssertTrue(run.isRunning, "the run finished before the signal; the test proved nothing")
            kill(run.processIdentifier, signal)
            run.waitUntilExit()
            XCTAssertEqual(run.terminationReason, .exit, "signal \(signal) killed the process instead of stopping it")
            XCTAssertEqual(run.terminationStatus, 128 + signal)
            XCTAssertTrue(FileManager.default.fileExists(atPath: stopped.appendingPathComponent("state.safetensors").path))
            XCTAssertFalse(FileManager.default.fileExists(atPath: stopped.appendingPathComponent("metrics.json").path))

            let resumed = try launch(tool, arguments(stopped) + ["--resume"])
            resumed.waitUntilExit()
            XCTAssertEqual(resumed.terminationStatus, 0)
            let metrics = try RunMetrics.read(stopped.appendingPathComponent("metrics.json"))
            XCTAssertEqual(metrics.frames, 30)
            XCTAssertEqual(metrics.confusionMatrix, expected.confusionMatrix)
        }
    }

    func testAnArgumentThatIsNotUTF8IsNamedAsSuch() throws {
        let tool = try builtTool()
        let folder = try temporaryFolder(self)
        // A latin-1 name (0xE9, e acute) that exists: Foundation cannot take it as a path.
        let name = folder.path + "/caf\u{E9}.pth"
        var bytes = Array(folder.path.utf8) + Array("/caf".utf8) + [0xE9] + Array(".pth".utf8) + [0]
        let descriptor = bytes.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_CREAT | O_WRONLY, 0o644) }
        }
        XCTAssertGreaterThanOrEqual(descriptor, 0)
        close(descriptor)
        XCTAssertFalse(FileManager.default.fileExists(atPath: name))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "exec \"$0\" info \"$1/caf$(printf '\\351').pth\"", tool.path, folder.path]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 64)
        XCTAssertTrue(message.contains("not valid UTF-8"), message)
        XCTAssertTrue(message.contains("caf\u{FFFD}.pth"), message)
    }
}
