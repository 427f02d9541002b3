import Foundation
import TestSupport
import XCTest
import Yams

@testable import SegTTTTool

/// Plans of runs (`segttt sweep`): their runs and folders, the errors of bad plans, all runs
/// on this machine against the same runs one by one, a stopped run resumed, the merged table,
/// and the jobs emitted for Slurm and Kubernetes.
final class SweepTests: ConfiguredTestCase {
    /// A plan of 2 streams x 2 methods x 3 seeds on the shipped synthetic model, tiny streams.
    static func plan(output: URL, frames: [String: Int] = ["night": 3, "fog": 4], extra: String = "") throws -> String {
        let model = try shippedModel()
        let streams = frames.keys.sorted().map { name in
            "  \(name): {dataset: \"synthetic:\(name):\(frames[name]!)\"}"
        }.joined(separator: "\n")
        return """
            output: \(output.path)
            options: {model: espnet, checkpoint: \(model.path), predictions: false, threads: 1\(extra)}
            streams:
            \(streams)
            methods: [bn-prior, tent]
            seeds: [0, 1, 2]

            """
    }

    static func write(_ text: String, in folder: URL, name: String = "plan.yaml") throws -> URL {
        let url = folder.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func testAPlanExpandsToItsRunsInOrderWithTheirOptions() throws {
        let folder = try temporaryFolder(self)
        let root = folder.appendingPathComponent("out")
        let url = try Self.write(
            try Self.plan(output: root) + "grid: {lr: [1.0e-5, 2.0e-5]}\n", in: folder)
        let plan = try SweepPlan(contentsOf: url)
        XCTAssertEqual(plan.runs.count, 24)
        XCTAssertEqual(plan.runs.map(\.index), Array(0..<24))
        let first = plan.runs[0]
        XCTAssertEqual(first.stream, "fog")
        XCTAssertEqual(first.variant, "bn-prior_lr-1e-05")
        XCTAssertEqual(first.folder, root.appendingPathComponent("fog/bn-prior_lr-1e-05/seed-0"))
        let last = plan.runs[23]
        XCTAssertEqual([last.stream, last.variant, "\(last.seed)"], ["night", "tent_lr-2e-05", "2"])
        // Later parts override earlier ones: the seed sets both seeds, the grid its value.
        let options = Dictionary(last.options, uniquingKeysWith: { $1 })
        XCTAssertEqual(options["seed"], "2")
        XCTAssertEqual(options["corruption-seed"], "2")
        XCTAssertEqual(options["lr"], "2e-05")
        XCTAssertEqual(options["method"], "tent")
        XCTAssertEqual(options["dataset"], "synthetic:night:3")
        XCTAssertNoThrow(try RunConfiguration(last.inputs))

        // --list prints one line per run and writes the manifest merge reads.
        XCTAssertNil(runTool(["sweep", url.path, "--list"]))
        let entries = try Merge.read(root)
        XCTAssertEqual(entries.count, 24)
        XCTAssertTrue(entries.allSatisfy { $0.status == .notStarted })
    }

    /// Parts run products of subsets: bn-prior once per stream, tent on one stream with its
    /// own grid and seeds, numbered part by part.
    func testPartsRunProductsOfSubsetsNumberedPartByPart() throws {
        let folder = try temporaryFolder(self)
        let root = folder.appendingPathComponent("out")
        let parts = """
            parts:
              - {methods: [bn-prior], seeds: [0]}
              - {streams: [night], methods: [tent], grid: {lr: [1.0e-4, 2.0e-4]}, seeds: [3, 4]}

            """
        let plan = try SweepPlan(contentsOf: try Self.write(try Self.plan(output: root) + parts, in: folder))
        XCTAssertEqual(
            plan.runs.map { "\($0.index) \($0.stream) \($0.variant) \($0.seed)" },
            [
                "0 fog bn-prior 0", "1 night bn-prior 0", "2 night tent_lr-0.0001 3", "3 night tent_lr-0.0001 4",
                "4 night tent_lr-0.0002 3", "5 night tent_lr-0.0002 4",
            ])
        XCTAssertEqual(plan.runs[5].folder, root.appendingPathComponent("night/tent_lr-0.0002/seed-4"))
        XCTAssertEqual(Dictionary(plan.runs[5].options, uniquingKeysWith: { $1 })["lr"], "0.0002")

        // --streams and --variants choose runs by name, a method's name taking all its grid values.
        let path = try Self.write(try Self.plan(output: root) + parts, in: folder).path
        func chosen(_ filters: [String]) throws -> [Int] {
            try (try Sweep.parse([path, "--list"] + filters)).selected(plan).map(\.index)
        }
        XCTAssertEqual(try chosen(["--variants", "tent"]), [2, 3, 4, 5])
        XCTAssertEqual(try chosen(["--variants", "tent_lr-0.0002,bn-prior", "--streams", "night"]), [1, 4, 5])
        XCTAssertEqual(try chosen([]), Array(0..<6))
        XCTAssertTrue(report(runTool(["sweep", path, "--list", "--streams", "rain"])).message.contains(
            "--streams rain: not in the plan; it has fog, night"))
        XCTAssertTrue(report(runTool(["sweep", path, "--run", "1", "--variants", "tent"])).message.contains(
            "--streams and --variants choose runs for --list or --local"))

        // The streams may come from a file beside the plan, shared by several plans.
        let shared = try Self.write("fog: {dataset: \"synthetic:fog:4\"}\n", in: folder, name: "streams.yaml")
        let streamsOnly = try Self.plan(output: root).replacingOccurrences(
            of: "streams:\n  fog: {dataset: \"synthetic:fog:4\"}\n  night: {dataset: \"synthetic:night:3\"}",
            with: "streams: \(shared.lastPathComponent)")
        let fromFile = try SweepPlan(contentsOf: try Self.write(streamsOnly, in: folder, name: "from-file.yaml"))
        XCTAssertEqual(fromFile.runs.map(\.stream), Array(repeating: "fog", count: 6))
        XCTAssertEqual(Dictionary(fromFile.runs[0].options, uniquingKeysWith: { $1 })["dataset"], "synthetic:fog:4")
        let missing = try Self.write(streamsOnly.replacingOccurrences(of: "streams.yaml", with: "none.yaml"), in: folder)
        XCTAssertThrowsError(try SweepPlan(contentsOf: missing)) {
            XCTAssertTrue("\($0)".contains(folder.appendingPathComponent("none.yaml").path), "\($0)")
        }
    }

    /// The project's experiments as plans (Benchmarks/plans): each reads, every run's options
    /// resolve as `segttt adapt`'s, the streams come from the shared file, and the parts give
    /// the runs the docs describe.
    func testTheProjectsPlansReadWithTheirRuns() throws {
        let plans = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Benchmarks/plans")
        func plan(_ name: String) throws -> SweepPlan { try SweepPlan(contentsOf: plans.appendingPathComponent(name)) }
        let results = try plan("results.yaml")
        XCTAssertEqual(results.runs.count, 7 * 10 + 9 + 5)
        XCTAssertEqual(Set(results.runs.map(\.seed)), [0])
        let stability = try plan("stability.yaml")
        // bn-prior once on 15 streams, three thresholds on two, the recommended preset x 3 seeds on 15.
        XCTAssertEqual(stability.runs.count, 15 + 3 * 2 + 15 * 3)
        XCTAssertEqual(stability.runs.filter { $0.variant == "bn-prior" }.map(\.seed), Array(repeating: 0, count: 15))
        XCTAssertEqual(try plan("stability-60.yaml").runs.count, 3 * 9)
        let adaptation = try plan("adaptation.yaml")
        // Sections 1-2, the table's noise streams' other seeds, section 4's design and held-out
        // streams, the noisy ones' other seeds and the second held-out set.
        XCTAssertEqual(adaptation.runs.count, 7 * 22 + 4 * 2 * 2 + 8 * 4 + 4 * 4 + 10 * 5 + 5 * 2 * 2 + 8 * 6)
        let cgnet = try XCTUnwrap(adaptation.runs.first { $0.stream == "cgnet-noise3" })
        let options = Dictionary(cgnet.options, uniquingKeysWith: { $1 })
        XCTAssertEqual(options["model"], "torchscript")
        XCTAssertEqual(options["corruption"], "gaussian_noise:3")
    }

    func testBadPlansAreRefusedNamingTheFileTheKeyAndTheFix() throws {
        let folder = try temporaryFolder(self)
        let root = folder.appendingPathComponent("out")
        let good = try Self.plan(output: root)
        let cases: [(String, String)] = [
            (good + "seed: [1]\n", "unknown key 'seed'"),
            (good.replacingOccurrences(of: "methods: [bn-prior, tent]", with: "methods: [bn-prior, nope]"),
             "run 3 (fog, nope, seed 0): 'method' 'nope'"),
            (good.replacingOccurrences(of: "seeds: [0, 1, 2]", with: "seeds: [0, 0]"), "'seeds' names a seed twice"),
            (good.replacingOccurrences(of: "output: \(root.path)\n", with: ""), "'output' is missing"),
            (good + "grid: {lr: []}\n", "'grid.lr' must be a non-empty list"),
            ("streams: [\n", "not valid YAML"),
            (good + "parts:\n  - {methods: [ocl]}\n", "'parts[0].methods' names 'ocl', which is not one of the plan's methods"),
            (good + "parts:\n  - {method: [tent]}\n", "'parts[0]' has unknown key 'method'"),
            (good + "parts:\n  - {methods: [tent]}\n  - {streams: [fog], methods: [tent]}\n",
             "run 6 (fog, tent, seed 0) is run 0 again"),
        ]
        for (index, (text, expected)) in cases.enumerated() {
            let url = try Self.write(text, in: folder, name: "bad\(index).yaml")
            let (message, code) = report(runTool(["sweep", url.path, "--list"]))
            XCTAssertTrue(message.contains(url.path) && message.contains(expected), "case \(index): \(message)")
            XCTAssertNotEqual(code, 0)
        }
        let url = try Self.write(good, in: folder)
        let (message, code) = report(runTool(["sweep", url.path, "--run", "12"]))
        XCTAssertTrue(message.contains("--run 12: the plan has runs 0 to 11"), message)
        XCTAssertEqual(code, 64)
        XCTAssertTrue(report(runTool(["sweep", url.path])).message.contains("give one of --list, --run I, --local"))
    }

    /// The markdown table of a sweep's merged results (without the heading, which names the root).
    static func mergedTable(_ root: URL, baseline: String = "bn-prior") throws -> String {
        Merge.table(try Merge.read(root), baseline: baseline).markdown()
    }

    /// Twelve runs on this machine two at a time, each in its own process, give the table of
    /// the same runs made one by one in this process; the merge writes its files, and a second
    /// --local skips the finished runs.
    func testLocalRunsGiveTheTableOfTheSameRunsOneByOne() throws {
        let tool = try builtTool()
        let folder = try temporaryFolder(self)
        let (parallel, serial) = (folder.appendingPathComponent("parallel"), folder.appendingPathComponent("serial"))
        let parallelPlan = try Self.write(try Self.plan(output: parallel), in: folder, name: "parallel.yaml")
        let serialPlan = try Self.write(try Self.plan(output: serial), in: folder, name: "serial.yaml")

        let local = try runProcess(tool, ["sweep", parallelPlan.path, "--local", "-j", "2"])
        XCTAssertEqual(local.status, 0, local.output)
        XCTAssertEqual(local.output.components(separatedBy: "\n").filter { $0.hasPrefix("[") }.count, 12, local.output)
        let serialRuns = try SweepPlan(contentsOf: serialPlan)
        try serialRuns.writeManifest()
        for run in serialRuns.runs { try Sweep.perform(run, threads: nil) }

        let table = try Self.mergedTable(parallel)
        XCTAssertEqual(table, try Self.mergedTable(serial))
        XCTAssertEqual(table.components(separatedBy: "\n").filter { $0.contains(" 3/3 ") }.count, 4, table)
        XCTAssertTrue(table.contains("| tent"), table)
        XCTAssertNil(runTool(["merge", parallel.path]))
        for file in ["merged.md", "merged.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: parallel.appendingPathComponent(file).path), file)
        }
        let again = try runProcess(tool, ["sweep", parallelPlan.path, "--local", "-j", "2"])
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertEqual(try Self.mergedTable(parallel), table)
        XCTAssertTrue(
            try String(contentsOf: parallel.appendingPathComponent("logs/run-0.log"), encoding: .utf8)
                .contains("run 0 is done already"))
    }

    /// A run stopped by SIGTERM mid-stream (as a scheduler stops a preempted task) and run
    /// again ends with the numbers of the same run uninterrupted; until then merge lists it as
    /// started, and a failed run as failed with its error.
    func testAStoppedRunResumesToTheUninterruptedNumbersAndMergeListsTheUnfinished() throws {
        let tool = try builtTool()
        let folder = try temporaryFolder(self)
        let root = folder.appendingPathComponent("out")
        let model = try shippedModel()
        // Two methods of the same options: run 0 is stopped and resumed, run 1 runs whole.
        let url = try Self.write(
            """
            output: \(root.path)
            options: {model: espnet, checkpoint: \(model.path), predictions: false, threads: 1, save-every: 2}
            streams: {fog: {dataset: "synthetic:fog:40"}, broken: {dataset: "camvid:/nonexistent"}}
            methods: {a: {method: tent}, b: {method: tent}}

            """, in: folder)
        let plan = try SweepPlan(contentsOf: url)
        let stopped = plan.runs.first { $0.stream == "fog" && $0.variant == "a" }!
        let whole = plan.runs.first { $0.stream == "fog" && $0.variant == "b" }!
        let process = Process()
        process.executableURL = tool
        process.arguments = ["sweep", url.path, "--run", "\(stopped.index)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let state = stopped.folder.appendingPathComponent("state.safetensors")
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: state.path) && process.isRunning && Date() < deadline {
            usleep(20_000)
        }
        let interrupted = process.isRunning
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        XCTAssertTrue(interrupted, "the run finished before it could be stopped; the test proved nothing")
        XCTAssertEqual(process.terminationStatus, 128 + SIGTERM)
        let broken = plan.runs.first { $0.stream == "broken" && $0.variant == "a" }!
        XCTAssertNotNil(runTool(["sweep", url.path, "--run", "\(broken.index)"]))

        let entries = try Merge.read(root)
        XCTAssertEqual(entries[stopped.index].status, .stopped)
        guard case .failed(let message) = entries[broken.index].status else {
            return XCTFail("run \(broken.index) is \(entries[broken.index].status), not failed")
        }
        XCTAssertTrue(message.contains("/nonexistent"), message)
        XCTAssertTrue(Merge.pending(entries).contains { $0.hasPrefix("run \(stopped.index) (fog, a, seed 0): started") })

        XCTAssertNil(runTool(["sweep", url.path, "--run", "\(stopped.index)"]))
        XCTAssertNil(runTool(["sweep", url.path, "--run", "\(whole.index)"]))
        let resumed = try RunMetrics.read(stopped.folder.appendingPathComponent("metrics.json"))
        let uninterrupted = try RunMetrics.read(whole.folder.appendingPathComponent("metrics.json"))
        XCTAssertEqual(resumed.frames, 40)
        XCTAssertEqual(resumed.confusionMatrix, uninterrupted.confusionMatrix)
        XCTAssertEqual(resumed.meanIoU, uninterrupted.meanIoU)
    }

    /// The Slurm script is a job array of one task per run that requeues and asks for a GPU
    /// where the plan runs on cuda; the Kubernetes manifest an Indexed Job with the index
    /// variable, the image, the volume and the command (and valid against Kubernetes' schema
    /// where `kubernetes-validate` is installed: .ci/run installs it).
    func testEmittedJobsNameTheArrayTheIndexTheImageAndTheVolume() throws {
        let folder = try temporaryFolder(self)
        let root = folder.appendingPathComponent("out")
        let url = try Self.write(try Self.plan(output: root), in: folder)
        let plan = try SweepPlan(contentsOf: url)
        let job = ClusterJob(
            plan: plan, planPath: "plans/my plan.yaml", executable: URL(fileURLWithPath: "/opt/segttt/bin/segttt"),
            threads: 2, workingFolder: "/lab")
        let script = job.slurmScript()
        for line in [
            "#SBATCH --array=0-11", "#SBATCH --requeue", "#SBATCH --cpus-per-task=2", "#SBATCH --chdir=/lab",
            "exec /opt/segttt/bin/segttt sweep 'plans/my plan.yaml' --run \"$SLURM_ARRAY_TASK_ID\" --threads 2",
        ] {
            XCTAssertTrue(script.contains(line + "\n"), "no '\(line)' in\n\(script)")
        }
        XCTAssertFalse(script.contains("--gres"))
        let cuda = try Self.write(try Self.plan(output: root, extra: ", device: cuda"), in: folder, name: "cuda.yaml")
        let gpuJob = ClusterJob(
            plan: try SweepPlan(contentsOf: cuda), planPath: "cuda.yaml", executable: URL(fileURLWithPath: "/x"),
            threads: 1, workingFolder: "/lab")
        XCTAssertTrue(gpuJob.slurmScript().contains("#SBATCH --gres=gpu:1\n"))

        let manifest = job.kubernetesManifest(image: "registry.lab/segttt:1", volumeClaim: "lab-data", mountPath: "/lab", parallelism: 4)
        let object = try XCTUnwrap(try Yams.load(yaml: manifest) as? [String: Any])
        XCTAssertEqual(object["kind"] as? String, "Job")
        let spec = try XCTUnwrap(object["spec"] as? [String: Any])
        XCTAssertEqual(spec["completionMode"] as? String, "Indexed")
        XCTAssertEqual(spec["completions"] as? Int, 12)
        XCTAssertEqual(spec["parallelism"] as? Int, 4)
        let pod = try XCTUnwrap((spec["template"] as? [String: Any])?["spec"] as? [String: Any])
        let container = try XCTUnwrap((pod["containers"] as? [[String: Any]])?.first)
        XCTAssertEqual(container["image"] as? String, "registry.lab/segttt:1")
        XCTAssertEqual(container["workingDir"] as? String, "/lab")
        let command = try XCTUnwrap(container["command"] as? [String])
        XCTAssertEqual(command.last, "exec segttt sweep 'plans/my plan.yaml' --run \"$JOB_COMPLETION_INDEX\" --threads 2")
        let volume = try XCTUnwrap((pod["volumes"] as? [[String: Any]])?.first)
        XCTAssertEqual((volume["persistentVolumeClaim"] as? [String: Any])?["claimName"] as? String, "lab-data")
        XCTAssertEqual((container["volumeMounts"] as? [[String: Any]])?.first?["mountPath"] as? String, "/lab")

        let validator = ProcessInfo.processInfo.environment["PATH", default: ""].split(separator: ":")
            .map { URL(fileURLWithPath: String($0)).appendingPathComponent("kubernetes-validate") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
        guard let validator else {
            throw XCTSkip("kubernetes-validate is not installed (pip install kubernetes-validate); the schema check is left out")
        }
        let file = try Self.write(manifest, in: folder, name: "job.yaml")
        let result = try runProcess(validator, ["--strict", file.path])
        XCTAssertEqual(result.status, 0, result.output)
    }
}

/// Runs `executable` with `arguments` to its end; its exit status and its output (standard
/// output and error together).
func runProcess(_ executable: URL, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
