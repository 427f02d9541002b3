import Foundation
import TestSupport
import XCTest

@testable import SegTTTTool

/// A plan of 12 runs through a real Slurm: `Scripts/local_slurm.sh start` (which `.ci/run`
/// calls) starts a one-node cluster on this machine and prints the SLURM_CONF to export; the
/// test is skipped where none is set. The job array's merged table equals the one `--local`
/// gives, with one task requeued mid-run on the way.
final class SlurmSweepTests: ConfiguredTestCase {
    /// Runs a Slurm client with the test's SLURM_CONF.
    func slurm(_ command: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        try runProcess(URL(fileURLWithPath: "/usr/bin/env"), [command] + arguments)
    }

    func testAJobArrayWithARequeuedTaskGivesTheLocalTable() throws {
        guard ProcessInfo.processInfo.environment["SLURM_CONF"] != nil,
            FileManager.default.isExecutableFile(atPath: "/usr/bin/sbatch")
        else {
            throw XCTSkip("no Slurm here: `bash Scripts/local_slurm.sh install` then export the SLURM_CONF that `start` prints")
        }
        let tool = try builtTool()
        let folder = try temporaryFolder(self)
        let (cluster, local) = (folder.appendingPathComponent("slurm"), folder.appendingPathComponent("local"))
        // The fog stream is long enough that its first task can be requeued mid-run.
        func plan(_ root: URL) throws -> String {
            try SweepTests.plan(output: root, frames: ["night": 3, "fog": 60], extra: ", save-every: 2")
        }
        let clusterPlan = try SweepTests.write(try plan(cluster), in: folder, name: "slurm.yaml")
        let localPlan = try SweepTests.write(try plan(local), in: folder, name: "local.yaml")
        let script = folder.appendingPathComponent("job.sh")
        let emitted = try runProcess(tool, ["sweep", clusterPlan.path, "--emit", "slurm"])
        XCTAssertEqual(emitted.status, 0, emitted.output)
        try emitted.output.write(to: script, atomically: true, encoding: .utf8)
        let submitted = try slurm("sbatch", ["--parsable", script.path])
        XCTAssertEqual(submitted.status, 0, submitted.output)
        let job = submitted.output.trimmingCharacters(in: .whitespacesAndNewlines)

        // Requeue the fog stream's first tent task once it has saved a state, and let it start
        // again at once (Slurm holds a requeued job back for a while).
        let requeued = try SweepPlan(contentsOf: clusterPlan).runs.first { $0.stream == "fog" && $0.variant == "tent" }!
        let state = requeued.folder.appendingPathComponent("state.safetensors")
        let metrics = requeued.folder.appendingPathComponent("metrics.json")
        var deadline = Date().addingTimeInterval(180)
        while !FileManager.default.fileExists(atPath: state.path) && Date() < deadline { usleep(20_000) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: metrics.path), "the task ended before it was requeued")
        let task = "\(job)_\(requeued.index)"
        XCTAssertEqual(try slurm("scontrol", ["requeue", task]).status, 0)
        usleep(500_000)
        _ = try slurm("scontrol", ["update", "JobId=\(task)", "StartTime=now"])

        let localRun = try runProcess(tool, ["sweep", localPlan.path, "--local", "-j", "2"])
        XCTAssertEqual(localRun.status, 0, localRun.output)
        deadline = Date().addingTimeInterval(300)
        while Date() < deadline {
            let queue = try slurm("squeue", ["-h", "-j", job])
            if queue.status == 0, queue.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { break }
            usleep(500_000)
        }
        let log = try String(
            contentsOf: cluster.appendingPathComponent("logs/slurm-\(job)_\(requeued.index).out"), encoding: .utf8)
        XCTAssertTrue(log.contains("stopped by SIGTERM"), "the requeued task was not stopped mid-run:\n\(log)")
        let table = try SweepTests.mergedTable(cluster)
        XCTAssertTrue(Merge.pending(try Merge.read(cluster)).isEmpty, "runs not finished under Slurm")
        XCTAssertEqual(table, try SweepTests.mergedTable(local))
    }
}
