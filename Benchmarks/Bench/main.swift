// segttt-bench: the OCL test-time step in Swift against the same step in PyTorch eager
// (Benchmarks/ocl_step.py, run by this program with Debian's python3-torch), on the same
// inputs, weights and thread count, with peak memory, the negative term's two forms, and
// achieved FLOP/s against a large matrix product.
//
//     swift run -c release segttt-bench [--threads N] [--repeats N] [--rounds N] [--only NAME]
//         [--device cpu|cuda[:N]] [--python /usr/bin/python3] [--output docs/BENCHMARKS.md] [--fresh]
//
// Finished measurements are kept in docs/benchmarks-cache.json (by job and thread count), so
// the slow ones can be run separately (--only) and the document is always written from all
// of them; --fresh measures the selected jobs again.
// `segttt-bench --child profile:NAME[,shapes] --threads N [--repeats R]` prints where a
// configuration's step spends its time, per libtorch operator (and input sizes);
// `segttt-bench --child convs --threads N [--repeats R]` times SegTTT's 3x3 convolution kernel
// and its 2x2 transposed one against what they replace, at the shapes of ESPNet's step
// (ConvolutionKernels.swift).
// NAME: espnet_480x360, espnet_torchscript_480x360 (the same network from a scripted file),
// deeplab_512x256, deeplab_1024x512, negative or matmul;
// deeplab_1024x512 also runs the step with the published Gram negative term at stride 4, for
// the peak memory the published code needs at its own resolution. Every
// measurement runs in its own child process (this program with --child), so its peak
// resident memory (VmHWM, reset through /proc/self/clear_refs) is its own. Times are medians
// of `repeats` runs after one warm-up run, which also gives the first step's loss. With
// `--rounds R` each job runs R times, PyTorch and Swift in turn, and each time or peak is the
// median over the rounds: the machine's speed drifts by a few percent over minutes, and
// alternating exposes both sides to the drift alike. With `--device cuda` (a CUDA libtorch
// through LIBTORCH, and a PyTorch with CUDA for the script) the model and inputs live on the
// GPU and every timer read waits for its kernels; peak memory is still the host's.
//
// Inputs: a generator seeded 0 draws an RGB image uniform in [0, 255), normalised by the
// model card. ESPNet uses the Cityscapes checkpoint espnet_p_2_q_8.pth; DeepLabV2-ResNet-101
// uses the weights the Python script draws and exports (so that both sides compute the same
// loss). The convolution FLOPs of a step are counted by the Python script's hooks on the
// same network and input; FLOP/s = those FLOPs / the median time of each side.
import Foundation
import SegTTT
import SegTTTKernels
import SegTTTReports
import Torch
import TorchNN

let usage = """
    usage: segttt-bench [--threads N] [--repeats N] [--rounds N] [--only NAME] [--device cpu|cuda[:N]]
                        [--denormals flush|keep] [--winograd on|off] [--layout channels-last|nchw]
                        [--python PATH] [--current-python PATH|none]
                        [--output FILE] [--cache FILE] [--fresh]

    The OCL step and the source forward in Swift against PyTorch eager (Benchmarks/ocl_step.py),
    with peak memory, the negative term's two forms and FLOP/s against a matrix product; writes
    the table to --output (default docs/BENCHMARKS.md). Finished jobs are cached in --cache
    (default docs/benchmarks-cache.json); --fresh measures the selected ones again.
      --threads N   libtorch threads on both sides (default: all cores)
      --repeats N   timed runs after the warm-up (default: per job)
      --rounds N    run each job N times, PyTorch and Swift in turn; report medians (default 1)
      --only NAME   espnet_480x360, espnet_torchscript_480x360, deeplab_512x256, deeplab_1024x512,
                    negative or matmul
      --device D    cpu (default) or cuda[:N] (a CUDA libtorch through LIBTORCH)
      --denormals M flush (default: flush-to-zero on both sides, as segttt runs) or keep
      --winograd W  on (default: SegTTT's convolutions take oneDNN's Winograd kernels where
                    Kernels.conv2d's rule admits them) or off (oneDNN's direct ones, as PyTorch)
      --layout L    DeepLabV2's activations on CPU: channels-last or nchw (default: the model's
                    own choice, DeepLabV2.channelsLastOnCPU)
      --python P    the Python with torch that runs the PyTorch side (default /usr/bin/python3)
      --current-python P
                    the Python with the current PyTorch (Scripts/install_current_torch.sh full), whose
                    eager and torch.compile steps run beside the others for espnet_480x360 and
                    deeplab_512x256 (default .venv-torch/bin/python when it exists; none: skip them)
    """

struct Options {
    var help = false
    var threads = ProcessInfo.processInfo.activeProcessorCount
    var repeats: Int?
    var rounds = 1
    var device = Device.cpu
    /// Flush denormals to zero on both sides (`Runtime.flushesDenormals`, torch.set_flush_denormal).
    var flushDenormals = true
    /// Whether SegTTT's side takes `Kernels.winogradConv3x3` where `Kernels.conv2d`'s rule admits it.
    var winograd = true
    /// Whether SegTTT's DeepLabV2 runs channels last on CPU (`DeepLabV2.channelsLastOnCPU`);
    /// nil leaves the model's default.
    var channelsLast: Bool?
    var only: String?
    var python = "/usr/bin/python3"
    /// The Python of the current PyTorch's contenders; nil leaves them out.
    var currentPython: String? = {
        let venv = repoRoot.appendingPathComponent(".venv-torch/bin/python").path
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : nil
    }()
    var output = "docs/BENCHMARKS.md"
    var cache = "docs/benchmarks-cache.json"
    var fresh = false
    var child: String?
    var weights = FileManager.default.temporaryDirectory.appendingPathComponent("segttt-bench").path

    init(_ arguments: [String]) throws {
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            if flag == "--fresh" || flag == "--help" || flag == "-h" {
                if flag == "--fresh" { fresh = true } else { help = true }
                continue
            }
            guard let value = rest.popFirst() else { throw TorchError("\(flag) needs a value") }
            /// `value` as a count of 1 or more, or an error naming the flag.
            func count() throws -> Int {
                guard let n = Int(value), n >= 1 else {
                    throw TorchError("\(flag) \(value): give a count of 1 or more")
                }
                return n
            }
            switch flag {
            case "--threads": threads = try count()
            case "--repeats": repeats = try count()
            case "--rounds": rounds = try count()
            case "--only":
                let names = configurations.map(\.name) + ["negative", "matmul"]
                guard names.contains(value) else {
                    throw TorchError("--only \(value): no such job; give one of \(names.joined(separator: ", "))")
                }
                only = value
            case "--device":
                device = try Device(parsing: value)
                do { try device.checkAvailable() } catch let error as TorchError {
                    throw TorchError("--device \(error.message)")
                }
            case "--denormals":
                guard value == "flush" || value == "keep" else {
                    throw TorchError("--denormals \(value): give flush or keep")
                }
                flushDenormals = value == "flush"
            case "--winograd":
                guard value == "on" || value == "off" else { throw TorchError("--winograd \(value): give on or off") }
                winograd = value == "on"
            case "--layout":
                guard value == "channels-last" || value == "nchw" else {
                    throw TorchError("--layout \(value): give channels-last or nchw")
                }
                channelsLast = value == "channels-last"
            case "--python": python = value
            case "--current-python": currentPython = value == "none" ? nil : value
            case "--output": output = value
            case "--cache": cache = value
            case "--child": child = value
            case "--weights": weights = value
            default:
                throw TorchError(
                    "unknown option \(flag); use --threads, --repeats, --rounds, --only, --device, --denormals, --winograd, --layout, --python, --current-python, --output, --cache or --fresh (--help lists them)"
                )
            }
        }
    }
}

/// The configurations whose step also runs under the current PyTorch, eager and compiled:
/// the two that issue 24's targets name.
let peerConfigurations = ["espnet_480x360", "deeplab_512x256"]

/// (network, height, width, default repeats), as in ocl_step.py.
let configurations: [(name: String, network: String, height: Int, width: Int, repeats: Int)] = [
    ("espnet_480x360", "espnet", 360, 480, 7),
    ("espnet_torchscript_480x360", "espnet-torchscript", 360, 480, 7),
    ("deeplab_512x256", "deeplab", 256, 512, 3),
    ("deeplab_1024x512", "deeplab", 512, 1024, 1),
]
let negativeShape = [2, 19, 512, 1024]
let negativeStrides = [16, 8, 4, 2, 1]
let gramLimit = 8.0 * 1_073_741_824
/// The published step at the published resolution needs the Gram form's stride 4 to fit (at
/// stride 2 one view's Gram matrix alone takes 64 GiB), as in ocl_step.py.
let gramStep = (name: "deeplab_1024x512", stride: 4)
let matmulSize = 2048
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

// MARK: measuring

/// Median wall time of `repeats` calls, in ms, each until `device` has finished its work.
func medianMilliseconds(_ repeats: Int, on device: Device, _ body: () throws -> Void) throws -> Double {
    var times: [Double] = []
    for _ in 0..<Swift.max(1, repeats) {
        try device.synchronize()
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        try device.synchronize()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    }
    return times.sorted()[times.count / 2]
}

/// Resets this process's peak resident set size (VmHWM) to the current one.
func resetPeak() {
    try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
}

/// This process's minor page faults so far.
func minorPageFaults() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_minflt
}

/// Peak resident set size since the last `resetPeak`, in MiB.
func peakMiB() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM") }),
        let kib = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap({ Double($0) }).first
    else { return .nan }
    return kib / 1024
}

// MARK: children

/// The network of a configuration; `channelsLast` sets DeepLabV2's layout on CPU (nil: its default).
func model(_ network: String, weights: String, channelsLast: Bool? = nil) throws -> any SegmentationModel {
    if network == "espnet" {
        return try ESPNet.load(repoRoot.appendingPathComponent("../shared/data/weights/espnet/espnet_p_2_q_8.pth"))
    }
    if network == "espnet-torchscript" {
        let scripted = URL(fileURLWithPath: weights).appendingPathComponent("espnet_p_2_q_8.scripted.pt")
        guard FileManager.default.fileExists(atPath: scripted.path) else {
            throw TorchError("\(scripted.path) is missing; the Python side exports it (run without --child)")
        }
        return try TorchScriptFamily().load(scripted, cardFile: nil)
    }
    let exported = URL(fileURLWithPath: weights).appendingPathComponent("deeplab_resnet101.safetensors")
    guard FileManager.default.fileExists(atPath: exported.path) else {
        throw TorchError("\(exported.path) is missing; the Python side exports it (run without --child)")
    }
    let deepLab = try DeepLabV2.load(exported)
    if let channelsLast { deepLab.channelsLastOnCPU = channelsLast }
    return deepLab
}

/// A configuration's network, its fixed frame (an RGB image uniform in [0, 255) from a
/// generator seeded 0, normalised by the model card), both on the device, and its number of
/// timed runs.
func setUp(_ name: String, options: Options) throws -> (network: any SegmentationModel, x: Tensor, repeats: Int) {
    guard let c = configurations.first(where: { $0.name == name }) else {
        throw TorchError("unknown configuration \(name)")
    }
    let network = try model(c.network, weights: options.weights, channelsLast: options.channelsLast)
    try network.move(to: options.device)
    let image = try Tensor.uniform([1, 3, c.height, c.width], low: 0, high: 255, generator: Generator(seed: 0))
    let x = try network.card.normalization.apply(image).to(device: options.device)
    return (network, x, options.repeats ?? c.repeats)
}

func runConfiguration(_ name: String, options: Options) throws -> [String: Any] {
    let (network, x, repeats) = try setUp(name, options: options)
    network.eval()
    _ = try withNoGrad { try network.logits(x) }
    resetPeak()
    let forward = try medianMilliseconds(repeats, on: options.device) { _ = try withNoGrad { try network.logits(x) } }
    let forwardPeak = peakMiB()
    let step = try measureStep(network, x, config: .defaults(for: .ocl), repeats: repeats, on: options.device)
    return step.merging(["name": name, "repeats": repeats, "forward_ms": forward, "forward_peak_mib": forwardPeak]) {
        $1
    }
}

/// The OCL step of a configuration with the negative term in the published Gram form at
/// `stride` (ocl_step.py part e).
func runGramStep(_ name: String, stride: Int, options: Options) throws -> [String: Any] {
    let (network, x, repeats) = try setUp(name, options: options)
    var config = AdaptationConfig.defaults(for: .ocl)
    config.negativeStride = stride
    let step = try measureStep(network, x, config: config, repeats: repeats, on: options.device)
    return step.merging(["name": name, "stride": stride, "repeats": repeats]) { $1 }
}

/// The OCL step on a fixed frame: median time, peak memory, and the first step's losses and
/// prediction histogram.
func measureStep(
    _ network: any SegmentationModel, _ x: Tensor, config: AdaptationConfig, repeats: Int, on device: Device
) throws -> [String: Any] {
    let method = try OCL(model: network, config: config)
    resetPeak()
    let first = try method.process(x)
    let step = try medianMilliseconds(repeats, on: device) { _ = try method.process(x) }
    let histogram = try first.prediction.to(device: .cpu).reshape([-1]).bincount(minLength: network.card.numOutputs)
        .toArray(Int64.self)
    return [
        "step_ms": step, "step_peak_mib": peakMiB(), "loss": first.losses["loss"] ?? .nan,
        "pos": first.losses["pos"] ?? .nan, "neg": first.losses["neg"] ?? .nan, "prediction_histogram": histogram,
    ]
}

/// The OCL step of a configuration under libtorch's operator profiler (`OperatorTime`), with
/// `byShapes` per operator and input sizes. Two plain warm-up steps, then `repeats` steps
/// profiled and thrown away, then `repeats` steps profiled for the table: the profiler's own
/// records, kept until it stops, push later tensors onto fresh heap pages, whose page faults
/// would be charged to the operators that first touch them; the second profile finds the
/// heap laid out by the first. Prints each operator's self and total time per step, from the
/// largest self time, and the page faults per profiled step; returns the profiled step's
/// time and the summed self times.
func runProfile(_ name: String, byShapes: Bool, options: Options) throws -> [String: Any] {
    let (network, x, repeats) = try setUp(name, options: options)
    let method = try OCL(model: network, config: .defaults(for: .ocl))
    for _ in 0..<2 { _ = try method.process(x) }
    let steps = { for _ in 0..<repeats { _ = try method.process(x) } }
    _ = try OperatorTime.profile(byShapes: byShapes, steps)
    let faultsBefore = minorPageFaults()
    let start = DispatchTime.now().uptimeNanoseconds
    let (_, operators) = try OperatorTime.profile(byShapes: byShapes, steps)
    let stepMs = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 / Double(repeats)
    let faults = minorPageFaults() - faultsBefore
    let perStep = { (ms: Double) in String(format: "%.2f", ms / Double(repeats)) }
    let rows = operators.prefix(40).map {
        [$0.name, String($0.calls / repeats), perStep($0.selfMilliseconds), perStep($0.totalMilliseconds)]
    }
    print(
        TextTable(header: ["operator or node", "calls per step", "self ms per step", "total ms per step"], rows: rows)
            .terminal())
    let selfMs = operators.reduce(0) { $0 + $1.selfMilliseconds } / Double(repeats)
    print(
        "step under the profiler: \(String(format: "%.1f", stepMs)) ms; operators' self times: "
            + "\(String(format: "%.1f", selfMs)) ms; page faults per step: \(faults / repeats)")
    return [
        "name": name, "repeats": repeats, "step_ms": stepMs, "self_ms": selfMs,
        "page_faults_per_step": faults / repeats,
    ]
}

func runNegative(form: String, stride: Int, repeats: Int, on device: Device) throws -> [String: Any] {
    let n = (negativeShape[2] / stride) * (negativeShape[3] / stride)
    var result: [String: Any] = ["form": form, "stride": stride, "pixels_per_view": n]
    if form == "gram", 2 * Double(n) * Double(n) * 4 > gramLimit { return result.merging(["fits": false]) { $1 } }
    let z = try Tensor.normal(negativeShape, mean: 0, std: 3, generator: Generator(seed: 0)).to(device: device)
    let q = try z.softmax(dim: 1).normalize(dim: 1).detach().requiresGrad(true)
    func body() throws -> Double {
        try q.zeroGrad()
        let value =
            form == "exact"
            ? try OutputContrastiveLoss.exactNegative(q) : try OutputContrastiveLoss.gramNegative(q, stride: stride)
        try value.backward()
        return try value.item()
    }
    let value = try body()
    resetPeak()
    let ms = try medianMilliseconds(repeats, on: device) { _ = try body() }
    result.merge(["fits": true, "ms": ms, "peak_mib": peakMiB(), "value": value]) { $1 }
    return result
}

/// The machine's reference rate: a large matrix product on `threads` threads. SegTTT keeps
/// OpenBLAS at one thread during the step (`Runtime.blasThreads`), so the product gets as many
/// as the benchmark's other jobs, as it has in the PyTorch script.
func runMatmul(repeats: Int, threads: Int, on device: Device) throws -> [String: Any] {
    if Runtime.blasThreads != nil { Runtime.blasThreads = threads }
    let generator = try Generator(seed: 0)
    let a = try Tensor.normal([matmulSize, matmulSize], generator: generator).to(device: device)
    let b = try Tensor.normal([matmulSize, matmulSize], generator: generator).to(device: device)
    _ = try a.matmul(b)
    let ms = try medianMilliseconds(repeats, on: device) { _ = try a.matmul(b) }
    return ["size": matmulSize, "ms": ms, "gflops": 2 * pow(Double(matmulSize), 3) / ms / 1e6]
}

func child(_ job: String, options: Options) throws {
    Runtime.configure(Runtime.Settings(threads: options.threads, flushDenormals: options.flushDenormals))
    if !options.winograd { try Kernels.useWinograd(false) }
    let parts = job.split(separator: ":", maxSplits: 1).map(String.init)
    let result: [String: Any]
    switch parts[0] {
    case "config": result = try runConfiguration(parts[1], options: options)
    case "profile":
        let spec = parts[1].split(separator: ",").map(String.init)
        result = try runProfile(spec[0], byShapes: spec.dropFirst().contains("shapes"), options: options)
    case "gram-step":
        let spec = parts[1].split(separator: ",").map(String.init)
        result = try runGramStep(spec[0], stride: Int(spec[1]) ?? 1, options: options)
    case "convs": result = try runConvolutionKernels(repeats: options.repeats ?? 15, matching: parts.dropFirst().first)
    case "negative":
        let spec = parts[1].split(separator: ",").map(String.init)
        result = try runNegative(
            form: spec[0], stride: Int(spec[1]) ?? 1, repeats: options.repeats ?? 5, on: options.device)
    default: result = try runMatmul(repeats: options.repeats ?? 7, threads: options.threads, on: options.device)
    }
    // JSON has no NaN: a figure that could not be measured is written as null.
    let finite = result.mapValues { value -> Any in
        if let number = value as? Double, !number.isFinite { return NSNull() }
        return value
    }
    let data = try JSONSerialization.data(withJSONObject: finite, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

// MARK: the parent

/// Runs a command, returning its standard output; standard error passes through.
func capture(_ executable: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw TorchError("\(executable) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
    }
    return String(decoding: data, as: UTF8.self)
}

func lastJSON(_ output: String) throws -> [String: Any] {
    guard let line = output.split(separator: "\n").last,
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
    else { throw TorchError("no JSON result in: \(output.suffix(300))") }
    return object
}

/// One side's result of a job from its rounds: the median over the rounds of every time, peak
/// memory and rate (keys ending in `ms`, `_mib` or `gflops`); the rest, the same in every
/// round, from the first. The step's time of each round is kept too (`step_ms_rounds`, in
/// round order), so that the report can give the spread of the per-round ratios.
func mergedRounds(_ rounds: [[String: Any]]) -> [String: Any] {
    var merged = rounds[0]
    for key in merged.keys where key.hasSuffix("ms") || key.hasSuffix("_mib") || key.hasSuffix("gflops") {
        let values = rounds.compactMap { ($0[key] as? NSNumber)?.doubleValue }
        if values.count == rounds.count { merged[key] = values.sorted()[values.count / 2] }
        if key == "step_ms", values.count == rounds.count, rounds.count > 1 { merged["step_ms_rounds"] = values }
    }
    merged["rounds"] = rounds.count
    return merged
}

func selectedJobs(_ only: String?) -> [(group: String, job: String)] {
    var jobs: [(String, String)] = []
    for c in configurations where only == nil || only == c.name { jobs.append(("configs", "config:" + c.name)) }
    if only == nil || only == gramStep.name {
        jobs.append(("gram-step", "gram-step:\(gramStep.name),\(gramStep.stride)"))
    }
    if only == nil || only == "negative" {
        jobs.append(("negative", "negative:exact,1"))
        jobs += negativeStrides.map { ("negative", "negative:gram,\($0)") }
    }
    if only == nil || only == "matmul" { jobs.append(("matmul", "matmul:")) }
    return jobs
}

/// The line of docs/BENCHMARKS.md after which the sections are written by hand.
let keptSectionsMarker = "<!-- Sections below are written by hand; segttt-bench keeps them. -->"

func parent(options: Options) throws {
    try FileManager.default.createDirectory(atPath: options.weights, withIntermediateDirectories: true)
    let script = repoRoot.appendingPathComponent("Benchmarks/ocl_step.py").path
    let me = CommandLine.arguments[0]
    // cache[key][job] = ["swift": result, "python": result]; key: the thread count, the
    // device before it when that is a GPU ("cuda:0/2"), and "/keep" after it for runs that
    // keep denormals.
    var cache =
        (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: options.cache))))
        as? [String: [String: [String: Any]]] ?? [:]
    let threads = String(options.threads)
    let key =
        (options.device == .cpu ? threads : "\(options.device)/\(threads)") + (options.flushDenormals ? "" : "/keep")
    /// The current PyTorch's contenders of a job: (name, its Python, extra arguments of ocl_step.py).
    func peers(_ job: String) -> [(name: String, python: String, arguments: [String])] {
        guard let current = options.currentPython, peerConfigurations.contains(where: { job == "config:" + $0 })
        else { return [] }
        return [("eager", current, []), ("compile", current, ["--compile"])]
    }
    for (_, job) in selectedJobs(options.only)
    where options.fresh || cache[key]?[job] == nil || (!peers(job).isEmpty && cache[key]?[job]?["peers"] == nil) {
        var common = [
            "--child", job, "--threads", threads, "--device", options.device.description,
            "--denormals", options.flushDenormals ? "flush" : "keep",
        ] + (options.winograd ? [] : ["--winograd", "off"]) + (options.channelsLast.map { ["--layout", $0 ? "channels-last" : "nchw"] } ?? [])
        if let repeats = options.repeats { common += ["--repeats", String(repeats)] }
        var theirRounds: [[String: Any]] = []
        var ourRounds: [[String: Any]] = []
        var peerRounds: [String: [[String: Any]]] = [:]
        for _ in 0..<options.rounds {
            theirRounds.append(
                try lastJSON(capture(options.python, [script] + common + ["--export-weights", options.weights])))
            ourRounds.append(try lastJSON(capture(me, common + ["--weights", options.weights])))
            for peer in peers(job) {
                peerRounds[peer.name, default: []].append(
                    try lastJSON(capture(peer.python, [script] + common + peer.arguments)))
            }
        }
        let (ours, theirs) = (mergedRounds(ourRounds), mergedRounds(theirRounds))
        let indent = String(repeating: " ", count: job.count)
        print("\(job): Swift \(ours)\n\(indent)  PyTorch \(theirs)")
        var entry: [String: Any] = ["swift": ours, "python": theirs]
        if !peerRounds.isEmpty {
            let merged = peerRounds.mapValues(mergedRounds)
            for (name, result) in merged.sorted(by: { $0.key < $1.key }) {
                print("\(indent)  current PyTorch \(name) \(result)")
            }
            entry["peers"] = merged
        }
        cache[key, default: [:]][job] = entry
        let data = try JSONSerialization.data(withJSONObject: cache, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: options.cache), options: .atomic)
    }
    var swift: [String: [[String: Any]]] = [:]
    var python: [String: [[String: Any]]] = [:]
    var current: [String: [String: [String: Any]]] = [:]
    for (group, job) in selectedJobs(nil) {
        guard let pair = cache[key]?[job], let ours = pair["swift"] as? [String: Any],
            let theirs = pair["python"] as? [String: Any]
        else { continue }
        swift[group, default: []].append(ours)
        python[group, default: []].append(theirs)
        if let peers = pair["peers"] as? [String: [String: Any]], let name = ours["name"] as? String {
            current[name] = peers
        }
    }
    let text = BenchmarkReport(
        threads: options.threads, device: options.device, flushDenormals: options.flushDenormals, swift: swift,
        python: python, current: current
    )
    .markdown()
    print("\n" + text)
    // The sections after the marker are written by hand and kept as they are.
    let existing = (try? String(contentsOfFile: options.output, encoding: .utf8)) ?? ""
    let kept = existing.range(of: keptSectionsMarker).map { String(existing[$0.lowerBound...]) }
    try (text + (kept.map { "\n" + $0 } ?? "")).write(toFile: options.output, atomically: true, encoding: .utf8)
    print("wrote \(options.output)")
}

do {
    let options = try Options(Array(CommandLine.arguments.dropFirst()))
    if options.help {
        print(usage)
        exit(0)
    }
    if let job = options.child { try child(job, options: options) } else { try parent(options: options) }
} catch {
    FileHandle.standardError.write("segttt-bench: \(error)\n".data(using: .utf8) ?? Data())
    exit(1)
}
