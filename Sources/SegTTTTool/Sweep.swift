import ArgumentParser
import Dispatch
import Foundation
import SegTTT

/// `segttt sweep PLAN`: the runs of a plan (`SweepPlan`), listed, one of them run (resuming
/// it), all of them run on this machine, or handed to a cluster scheduler as a job array.
struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a plan of many runs: streams x methods x grid values x seeds.",
        discussion: """
            PLAN is a YAML or JSON file:

              output: out/sweep
              options: {threads: 1, predictions: false}
              streams:
                night: {model: espnet, checkpoint: w.pth, dataset: "synthetic:night:40"}
              # or streams: streams.yaml, a file of such definitions beside the plan
              methods: [bn-prior, tent]
              grid: {lr: [1.0e-5, 2.0e-5]}
              seeds: [0, 1, 2]
              parts:                     # optional: products of subsets
                - {methods: [bn-prior], seeds: [0]}
                - {methods: [tent]}

            Each run is a `segttt adapt` with the options of `options`, its stream, its \
            method, its grid values and its seed (seed and corruption-seed), into \
            OUTPUT/STREAM/VARIANT/seed-S. Without parts the runs are every stream x method x \
            grid values x seed; each part is that product over the streams and methods it \
            names, with its own grid and seeds. Runs are numbered from 0, part by part, \
            streams and methods given as mappings in name order (a list of methods in its \
            order). --run I resumes a run whose folder holds a saved state and does nothing for a finished one, so a job \
            that is preempted and requeued continues where it stopped. `segttt merge OUTPUT` \
            gathers the results. Relative paths are read from the folder the command runs in.
            """)

    @Argument(help: "The plan (YAML or JSON).")
    var plan: String

    @Flag(help: "Print one line per run: index, folder, options.")
    var list = false

    @Option(name: .customLong("run"), help: "Run the run of this index (from 0), resuming it when it was stopped.")
    var runIndex: Int?

    @Flag(help: "Run every run on this machine, --jobs at a time.")
    var local = false

    @Option(help: "With --list or --local: only the runs of these streams (names of the plan, comma-separated).")
    var streams: String?

    @Option(help: "With --list or --local: only the runs of these variants (a method's name takes all its grid values).")
    var variants: String?

    @Option(name: [.customShort("j"), .long], help: "Runs at a time with --local; the parallelism of --emit kubernetes.")
    var jobs = 1

    @Option(help: "libtorch threads per run (default: the plan's, else with --local the cores shared out over --jobs).")
    var threads: Int?

    @Option(help: "Write a job for a scheduler to standard output: slurm (a job array) or kubernetes (an Indexed Job).")
    var emit: ClusterJob.Kind?

    @Option(help: "--emit kubernetes: the container image that holds segttt.")
    var image = "segttt:latest"

    @Option(help: "--emit kubernetes: the PersistentVolumeClaim that holds the plan, the data and the output root.")
    var volumeClaim = "segttt-data"

    @Option(help: "--emit kubernetes: where the volume is mounted, the runs' working folder (default: this folder).")
    var mountPath: String?

    func validate() throws {
        let modes = [list, runIndex != nil, local, emit != nil].filter { $0 }.count
        guard modes == 1 else {
            throw ValidationError("give one of --list, --run I, --local or --emit slurm|kubernetes")
        }
        if streams != nil || variants != nil, !(list || local) {
            throw ValidationError("--streams and --variants choose runs for --list or --local; --run and --emit take the whole plan")
        }
        guard (1...1024).contains(jobs) else { throw ValidationError("--jobs \(jobs): give 1 to 1024") }
        if let threads, !RunSettings.threadRange.contains(threads) {
            throw ValidationError("--threads \(threads): give \(RunSettings.threadRange.lowerBound) to \(RunSettings.threadRange.upperBound)")
        }
    }

    func run() throws {
        let plan = try SweepPlan(contentsOf: URL(fileURLWithPath: self.plan))
        try plan.writeManifest()
        if list {
            for run in try selected(plan) {
                let options = run.options.map { "--\($0.key)=\($0.value)" }.joined(separator: " ")
                print("\(run.index)\t\(run.folder.path)\t\(options)")
            }
        } else if let index = runIndex {
            guard plan.runs.indices.contains(index) else {
                throw ValidationError("--run \(index): the plan has runs 0 to \(plan.runs.count - 1)")
            }
            try Self.perform(plan.runs[index], threads: threads)
        } else if local {
            try runLocally(plan)
        } else if let emit {
            let job = ClusterJob(
                plan: plan, planPath: self.plan, executable: try Self.executable(),
                threads: threads ?? plan.threads ?? 1, workingFolder: FileManager.default.currentDirectoryPath)
            switch emit {
            case .slurm:
                // Slurm opens the tasks' output files before their script runs.
                try FileManager.default.createDirectory(
                    at: plan.output.appendingPathComponent("logs"), withIntermediateDirectories: true)
                print(job.slurmScript(), terminator: "")
            case .kubernetes:
                print(
                    job.kubernetesManifest(
                        image: image, volumeClaim: volumeClaim, mountPath: mountPath ?? job.workingFolder,
                        parallelism: jobs),
                    terminator: "")
            }
        }
    }

    /// The runs that --streams and --variants choose (all without them), in the plan's order.
    ///
    /// - Throws: `ValidationError` for a name that is no stream or variant of the plan.
    func selected(_ plan: SweepPlan) throws -> [SweepPlan.Run] {
        func names(_ list: String?, _ flag: String, _ known: [String]) throws -> Set<String>? {
            guard let list else { return nil }
            let names = Set(list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            if let unknown = names.sorted().first(where: { !known.contains($0) }) {
                throw ValidationError("--\(flag) \(unknown): not in the plan; it has \(known.uniqued().joined(separator: ", "))")
            }
            return names
        }
        let streams = try names(self.streams, "streams", plan.runs.map(\.stream))
        let variants = try names(self.variants, "variants", plan.runs.flatMap { [$0.method, $0.variant] })
        return plan.runs.filter { run in
            (streams?.contains(run.stream) ?? true) && (variants.map { $0.contains(run.variant) || $0.contains(run.method) } ?? true)
        }
    }

    /// Runs one run of a plan: nothing when its metrics are written, a resume when its folder
    /// holds a saved state, a fresh run otherwise. A failure leaves `failed.txt` with the
    /// error in the run's folder for `segttt merge`; a stop by a signal saves the state.
    static func perform(_ run: SweepPlan.Run, threads: Int?) throws {
        var inputs = run.inputs
        if let threads { inputs.append("threads", .text("\(threads)")) }
        let configuration: RunConfiguration
        do {
            configuration = try RunConfiguration(inputs)
        } catch let error as OptionError {
            throw error.usageError(inputs)
        }
        let metrics = run.folder.appendingPathComponent("metrics.json")
        let failure = run.folder.appendingPathComponent(Self.failureFile)
        if FileManager.default.fileExists(atPath: metrics.path) {
            print("run \(run.index) is done already: \(metrics.path)")
            return
        }
        let job = try AdaptationJob(configuration: configuration, output: run.folder)
        job.printsClassTable = false
        try? FileManager.default.removeItem(at: failure)
        do {
            try Interrupted.exitingOnSignal { try job.run(resume: RunState(folder: run.folder).exists) }
        } catch let error as ExitCode {
            throw error
        } catch {
            try? FileManager.default.createDirectory(at: run.folder, withIntermediateDirectories: true)
            try? "\(SegTTTCommand.fullMessage(for: error))\n".write(to: failure, atomically: true, encoding: .utf8)
            throw error
        }
        print("run \(run.index) done: \(metrics.path)")
    }

    /// The file a failed run leaves in its folder, with the error.
    static let failureFile = "failed.txt"

    /// This process's executable, which `--local` starts once per run and the emitted jobs call.
    static func executable() throws -> URL {
        let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? Bundle.main.executablePath ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: path)
    }

    /// Every run of the plan in a process of its own (`segttt sweep PLAN --run I`), `jobs` at a
    /// time, each with `threads` threads or the cores shared out; one line per run as it
    /// starts and ends, the output of each in OUTPUT/logs/run-I.log.
    private func runLocally(_ plan: SweepPlan) throws {
        let executable = try Self.executable()
        let perRun = threads ?? plan.threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount / jobs)
        let logs = plan.output.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        let runs = try selected(plan)
        let total = runs.count
        print("\(total) runs, \(jobs) at a time, \(perRun) thread(s) each; logs in \(logs.path)")
        let slots = DispatchSemaphore(value: jobs)
        let group = DispatchGroup()
        let tally = Tally()
        for run in runs {
            slots.wait()
            let log = logs.appendingPathComponent("run-\(run.index).log")
            guard FileManager.default.createFile(atPath: log.path, contents: nil) else {
                throw ToolError("\(log.path): cannot create the run's log; check that \(logs.path) is writable")
            }
            let handle = try FileHandle(forWritingTo: log)
            let process = Process()
            process.executableURL = executable
            process.arguments = ["sweep", self.plan, "--run", "\(run.index)", "--threads", "\(perRun)"]
            process.standardOutput = handle
            process.standardError = handle
            process.standardInput = FileHandle.nullDevice
            let started = Date()
            group.enter()
            process.terminationHandler = { process in
                try? handle.close()
                let status = process.terminationStatus
                let seconds = Date().timeIntervalSince(started)
                let metrics = try? RunMetrics.read(run.folder.appendingPathComponent("metrics.json"))
                let outcome =
                    status == 0
                    ? "done, mIoU \(metrics.map { String(format: "%.2f", $0.meanIoU) } ?? "?")"
                    : "failed (exit \(status)), see \(log.path)"
                tally.record(run.index, failed: status != 0) { finished in
                    print(
                        "[\(finished)/\(total)] run \(run.index) \(run.stream) \(run.variant) seed \(run.seed): \(outcome) "
                            + String(format: "(%.0f s)", seconds))
                    fflush(stdout)
                }
                slots.signal()
                group.leave()
            }
            print("start run \(run.index): \(run.stream) \(run.variant) seed \(run.seed)")
            fflush(stdout)
            do {
                try process.run()
            } catch {
                try? handle.close()
                group.leave()
                slots.signal()
                throw ToolError("cannot start \(executable.path) for run \(run.index): \(error)")
            }
        }
        group.wait()
        let failed = tally.failed
        guard failed.isEmpty else {
            throw ToolError(
                "runs \(failed.sorted().map(String.init).joined(separator: ", ")) failed (their logs are in \(logs.path)); "
                    + "the same command runs them again and skips the finished ones")
        }
        print("all \(total) runs done; gather them with: segttt merge \(plan.output.path)")
    }
}

/// The runs of `--local` that have ended, counted from the processes' termination handlers.
private final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private var finished = 0
    private var failures: [Int] = []

    /// Counts a run that ended and reports it with the count, under the lock.
    func record(_ index: Int, failed: Bool, report: (Int) -> Void) {
        lock.lock()
        defer { lock.unlock() }
        finished += 1
        if failed { failures.append(index) }
        report(finished)
    }

    var failed: [Int] {
        lock.lock()
        defer { lock.unlock() }
        return failures
    }
}
