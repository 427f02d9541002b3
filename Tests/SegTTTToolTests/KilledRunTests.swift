import Foundation
import XCTest

@testable import SegTTTTool

/// The built `segttt` executable, killed with SIGKILL mid-stream and resumed.
final class KilledRunTests: XCTestCase {
    /// The segttt executable built beside the test bundle.
    func executable() throws -> URL {
        var folder = Bundle.main.bundleURL
        for _ in 0..<3 {
            let candidate = folder.appendingPathComponent("segttt")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
        throw XCTSkip("no segttt executable beside \(Bundle.main.bundleURL.path); build it with swift build")
    }

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
        let tool = try executable()
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
}
