// The results table of docs/RESULTS.md: test-time methods on real streams from
// ../shared/data (ESPNet checkpoints, CamVid test split), published defaults first, then
// the sensitivity of OCL to its learning rate and BN prior.
//
//     swift run -c release segttt-results [--data ../shared/data] [--limit N] [--methods a,b] [--output docs/RESULTS.md]
//
// --limit N runs only the first N frames of every stream (a quick look; the table then says so).
// Every finished cell is kept in a cache file (--cache, default docs/results-cache.json), so
// an interrupted run resumes where it stopped; --render-only writes the table from the cache
// alone, with the cells not run yet marked "pending".
import Foundation
import SegTTT
import Torch

let usage = """
    usage: segttt-results [--data DIR] [--limit N] [--methods A,B] [--output FILE] [--cache FILE] [--render-only]

    OCL and its baselines on the real streams of DIR (default ../shared/data: ESPNet
    checkpoints, the CamVid test split): mean IoU per stream and method, written to --output
    (default docs/RESULTS.md). Finished cells are kept in --cache (default
    docs/results-cache.json), so an interrupted run resumes where it stopped.
      --limit N       only the first N frames of every stream (a quick look)
      --methods A,B   run only these columns now (the others come from the cache or read "pending")
      --render-only   write the table from the cache alone; cells not run yet read "pending"
    """

struct Options {
    var help = false
    var data = "../shared/data"
    var limit: Int?
    var output = "docs/RESULTS.md"
    var cache = "docs/results-cache.json"
    /// Write the table from the cache alone, marking cells not run yet as pending.
    var renderOnly = false
    /// The columns to run now (nil: every column).
    var methods: Set<String>?

    init(_ arguments: [String]) throws {
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            if flag == "--render-only" || flag == "--help" || flag == "-h" {
                if flag == "--render-only" { renderOnly = true } else { help = true }
                continue
            }
            guard let value = rest.popFirst() else { throw TorchError("\(flag) needs a value") }
            switch flag {
            case "--data": data = value
            case "--limit":
                guard let n = Int(value), n >= 1 else { throw TorchError("--limit \(value): give a frame count of 1 or more") }
                limit = n
            case "--output": output = value
            case "--methods": methods = Set(value.split(separator: ",").map(String.init))
            case "--cache": cache = value
            default:
                throw TorchError("unknown option \(flag); use --data, --limit, --methods, --output, --cache or --render-only (--help lists them)")
            }
        }
    }
}

/// One labelled stream and the checkpoint evaluated on it.
struct Stream {
    var name: String
    var checkpoint: String
    var dataset: any SegmentationDataset
    var mapping: ClassMapping
}

/// A method column: a registered method and its configuration.
struct Column {
    var name: String
    var method: MethodEntry
    var config: AdaptationConfig
}

/// Finished cells by "stream | column | frames", with mIoU (%) and seconds per frame.
struct Cache: Codable {
    var cells: [String: [Double]] = [:]
}

/// mIoU (%) of the stream, seconds per frame, then the mIoU of each round of a stream
/// played several times.
func run(_ column: Column, on stream: Stream, weights: URL, limit: Int?) throws -> [Double] {
    let model = try ESPNet.load(weights.appendingPathComponent(stream.checkpoint))
    let method = try column.method.make(model: model, config: column.config)
    let runner = try Runner(method: method, dataset: stream.dataset, mapping: stream.mapping)
    var seconds = 0.0
    try runner.run(until: limit, onFrame: { seconds += $0.seconds })
    let frames = Double(Swift.min(limit ?? stream.dataset.count, stream.dataset.count))
    let rounds = runner.roundMatrices.count > 1 ? runner.roundMatrices.map { $0.meanIoU * 100 } : []
    return [runner.matrix.meanIoU * 100, seconds / frames] + rounds
}

/// One row per column on a stream played in rounds: the mIoU of each round and of the whole.
func roundsTable(
    title: String, stream: Stream, rounds: Int, columns: [Column], weights: URL, renderOnly: Bool, only: Set<String>?,
    cache: inout Cache, lines output: inout [String], flush: ([String], Cache) throws -> Void
) throws {
    var lines = [
        "### \(title)", "",
        "| method | " + (1...rounds).map { "round \($0)" }.joined(separator: " | ") + " | all rounds | seconds per frame |",
        "| --- |" + String(repeating: " ---: |", count: rounds + 2),
    ]
    for column in columns {
        let key = "\(stream.name) | \(column.name) | \(stream.dataset.count)"
        if cache.cells[key] == nil, !renderOnly, only?.contains(column.name) ?? true {
            cache.cells[key] = try run(column, on: stream, weights: weights, limit: nil)
            print("\(key)\t\(String(format: "%.2f", cache.cells[key]?[0] ?? .nan))")
            try flush(output + lines, cache)
        }
        let cells: [String]
        if let cell = cache.cells[key], cell.count == 2 + rounds {
            cells = cell[2...].map { String(format: "%.1f", $0) } + [String(format: "%.1f", cell[0]), String(format: "%.2f", cell[1])]
        } else {
            cells = Array(repeating: "pending", count: rounds + 2)
        }
        lines.append("| \(column.name) | " + cells.joined(separator: " | ") + " |")
    }
    output += lines + [""]
    try flush(output, cache)
}

/// Runs every column on every stream; `lines` gets the table row by row, and `flush` is
/// called after each row so an interrupted run leaves the rows it finished.
func table(
    title: String, streams: [Stream], columns: [Column], weights: URL, limit: Int?, renderOnly: Bool,
    only: Set<String>? = nil, cache: inout Cache, lines output: inout [String], flush: ([String], Cache) throws -> Void
) throws {
    var lines = [
        "### \(title)", "",
        "| stream | " + columns.map(\.name).joined(separator: " | ") + " |",
        "| --- |" + String(repeating: " ---: |", count: columns.count),
    ]
    var timing: [String: [Double]] = [:]
    for stream in streams {
        var cells: [String] = []
        for column in columns {
            let frames = Swift.min(limit ?? stream.dataset.count, stream.dataset.count)
            let key = "\(stream.name) | \(column.name) | \(frames)"
            if cache.cells[key] == nil, !renderOnly, only?.contains(column.name) ?? true {
                let cell = try run(column, on: stream, weights: weights, limit: limit)
                cache.cells[key] = cell
                print("\(key)\t\(String(format: "%.2f", cell[0]))\t\(String(format: "%.3f", cell[1])) s/frame")
                try flush(output + lines, cache)
            }
            if let cell = cache.cells[key] {
                cells.append(String(format: "%.1f", cell[0]))
                timing[column.name, default: []].append(cell[1])
            } else {
                cells.append("pending")
            }
        }
        lines.append("| \(stream.name) | " + cells.joined(separator: " | ") + " |")
        try flush(output + lines, cache)
    }
    let perFrame = columns.map { column in
        guard let t = timing[column.name] else { return "pending" }
        return String(format: "%.2f", t.reduce(0, +) / Double(t.count))
    }
    lines.append("| seconds per frame | " + perFrame.joined(separator: " | ") + " |")
    output += lines + [""]
    try flush(output, cache)
}

func main() throws {
    let options = try Options(Array(CommandLine.arguments.dropFirst()))
    if options.help {
        print(usage)
        return
    }
    let data = URL(fileURLWithPath: options.data)
    let weights = data.appendingPathComponent("weights/espnet")
    let camVid = try CamVid(root: data.appendingPathComponent("camvid"))
    let cityscapesModel = "espnet_p_2_q_8.pth"
    let camVidModel = "espnet_p_2_q_8_camvid.pth"
    var streams = [
        Stream(
            name: "Cityscapes -> CamVid, dusk", checkpoint: cityscapesModel, dataset: camVid.only(.dusk),
            mapping: .cityscapesToCamVid),
        Stream(
            name: "Cityscapes -> CamVid, day", checkpoint: cityscapesModel, dataset: camVid.only(.day),
            mapping: .cityscapesToCamVid),
        Stream(
            name: "Cityscapes -> CamVid, all", checkpoint: cityscapesModel, dataset: camVid,
            mapping: .cityscapesToCamVid),
    ]
    for corruption in ["gaussian_noise:1", "gaussian_noise:3", "contrast:1", "contrast:3"] {
        streams.append(
            Stream(
                name: "CamVid + \(corruption)", checkpoint: camVidModel,
                dataset: CorruptedDataset(camVid, corruption: try Corruption(parsing: corruption), seed: 0),
                mapping: .identity(classes: 11, outputs: 12)))
    }
    // Every registered method with its published settings, and the source with flip views.
    var published = Methods.all.map { Column(name: $0.name, method: $0, config: $0.defaults(.published)) }
    if let source = Methods.named(MethodName.source.rawValue) {
        var sourceFlip = source.defaults(.published)
        sourceFlip.flip = true
        published.insert(Column(name: "source-flip", method: source, config: sourceFlip), at: 1)
    }
    func ocl(lr: Double, prior: Double) -> Column {
        var config = AdaptationConfig.defaults(for: .ocl)
        config.learningRate = lr
        config.bnPrior = prior
        return Column(name: String(format: "lr %g, prior %g", lr, prior), method: OCL.entry, config: config)
    }
    let sweepStreams = [streams[0]]  // the dusk sequence: the largest shift
    let command = "swift run -c release segttt-results" + (options.limit.map { " --limit \($0)" } ?? "")
    var lines = [
        "# Results", "",
        "Mean IoU (%) over each whole stream (one confusion matrix per stream), ESPNet checkpoints",
        "from `../shared/data`, CamVid test split at 480x360. Produced by", "", "    \(command)", "",
        options.limit.map { "Only the first \($0) frames of every stream (a quick look, not the full figures)." }
            ?? "Full streams: 233 frames (all), 171 (day), 62 (dusk).",
        "Corruptions are seeded (seed 0). Cityscapes -> CamVid maps the 19 Cityscapes classes to",
        "CamVid's 11 and counts the background output as unmapped (shared/MODELS.md).",
        "Seconds per frame are wall times of predicting and adapting on the machine that ran the",
        "command, for orientation only (speed is measured properly by the benchmarks); cells run",
        "on different days ran on machines of different load, so compare the cost of methods in the",
        "rounds table, whose cells all ran on 2026-12-02 (AMD EPYC, AVX2, 2 threads).",
        "Every column runs its method's published settings (`segttt adapt --preset published`);",
        "the methods and their settings are those of `segttt adapt --help` (each cited in its file).",
        "`segttt adapt` starts from the recommended preset, OCL with gradient clipping and the drift",
        "monitor; its figures on these streams and others are in docs/STABILITY.md.",
        "Cells marked pending have not been run yet: the command resumes from docs/results-cache.json.",
        "A cell runs again only when the cache lacks it: delete the cache to renew every cell. The",
        "source, source-flip and TENT cells were run on 2026-11-22 (no later change touches them),",
        "the bn-prior, OCL and sensitivity cells on 2026-11-23, bn-alpha, bn-ema, CoTTA, pl-reset,",
        "DIGA and the rounds table on 2026-12-02.", "",
    ]
    var cache = Cache()
    if let data = FileManager.default.contents(atPath: options.cache) {
        cache = try JSONDecoder().decode(Cache.self, from: data)
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    let flush = { (text: [String], cache: Cache) in
        try text.joined(separator: "\n").write(toFile: options.output, atomically: true, encoding: .utf8)
        try encoder.encode(cache).write(to: URL(fileURLWithPath: options.cache), options: .atomic)
    }
    let learningRates = [1e-5, 1e-4, 1e-3].map { ocl(lr: $0, prior: 0.85) }
    let priors = [0.7, 0.95].map { ocl(lr: 2e-5, prior: $0) }
    // The sweeps run on the short dusk sequence: compute them before the long corrupted
    // streams, so an interrupted run has them; the tables below are then written in order.
    var unused: [String] = []
    try table(
        title: "", streams: sweepStreams, columns: learningRates + priors, weights: weights, limit: options.limit,
        renderOnly: options.renderOnly, cache: &cache, lines: &unused,
        flush: { _, cache in try encoder.encode(cache).write(to: URL(fileURLWithPath: options.cache), options: .atomic) })
    try table(
        title: "Published defaults", streams: streams, columns: published, weights: weights, limit: options.limit,
        renderOnly: options.renderOnly, only: options.methods, cache: &cache, lines: &lines, flush: flush)
    // The continual benchmarks' protocol: a schedule of corruptions, played several times over.
    let schedule = try CorruptionSchedule(parsing: "gaussian_noise:3@20,contrast:3@21,fog:3@21")
    let rounds = 3
    let roundStream = Stream(
        name: "CamVid dusk, \(schedule), \(rounds) rounds", checkpoint: camVidModel,
        dataset: RepeatedDataset(CorruptedDataset(camVid.only(.dusk), schedule: schedule, seed: 0), rounds: rounds),
        mapping: .identity(classes: 11, outputs: 12))
    if options.limit == nil {
        try roundsTable(
            title: "A continual schedule in rounds: \(roundStream.name) (\(roundStream.dataset.count) frames, "
                + "the CamVid checkpoint, no reset between rounds)",
            stream: roundStream, rounds: rounds, columns: published.filter { $0.name != "source-flip" },
            weights: weights, renderOnly: options.renderOnly, only: options.methods, cache: &cache, lines: &lines,
            flush: flush)
    }
    try table(
        title: "OCL sensitivity: learning rate (prior 0.85; lr 2e-5 is the ocl column above)", streams: sweepStreams,
        columns: learningRates, weights: weights, limit: options.limit,
        renderOnly: options.renderOnly, cache: &cache, lines: &lines, flush: flush)
    try table(
        title: "OCL sensitivity: BN prior (lr 2e-5; prior 0.85 is the ocl column above)", streams: sweepStreams,
        columns: priors, weights: weights, limit: options.limit,
        renderOnly: options.renderOnly, cache: &cache, lines: &lines, flush: flush)
    print("wrote \(options.output)")
}

// libtorch's threads on every core; IEEE arithmetic, as the figures were measured.
Runtime.configure(Runtime.Settings(flushDenormals: false))
do {
    try main()
} catch {
    FileHandle.standardError.write("segttt-results: \(error)\n".data(using: .utf8) ?? Data())
    exit(1)
}
