import Foundation
import SegTTTReports
import Torch

/// The tables of docs/BENCHMARKS.md from both sides' results.
struct BenchmarkReport {
    let threads: Int
    let swift: [String: [[String: Any]]]
    let python: [String: [[String: Any]]]

    private func number(_ result: [String: Any]?, _ key: String) -> Double? {
        (result?[key] as? NSNumber)?.doubleValue
    }

    private func format(_ value: Double?, _ digits: Int = 1) -> String {
        guard let value, value.isFinite else { return "-" }
        return String(format: "%.\(digits)f", value)
    }

    private func ratio(_ a: Double?, _ b: Double?) -> String {
        guard let a, let b, b > 0 else { return "-" }
        return String(format: "%.2f", a / b)
    }

    func markdown() -> String {
        var out = [
            "# Benchmarks", "",
            "Produced by `swift run -c release segttt-bench --threads \(threads)` (it runs "
                + "`Benchmarks/ocl_step.py` for the PyTorch eager side), libtorch \(Runtime.libtorchVersion), "
                + "\(ProcessInfo.processInfo.activeProcessorCount) cores, \(threads) thread(s). Medians after a "
                + "warm-up; each measurement in its own process; peak memory is the process's VmHWM during it.", "",
        ]
        let configs = zip(swift["configs"] ?? [], python["configs"] ?? [])
        let matmul = (swift["matmul"]?.first, python["matmul"]?.first)
        if !(swift["configs"] ?? []).isEmpty {
            out += ["## OCL step and source forward", ""]
            let rows = configs.map { ours, theirs -> [String] in
                let loss = number(ours, "loss")
                let theirLoss = number(theirs, "loss")
                let relative = (loss != nil && theirLoss != nil) ? Swift.abs(loss! - theirLoss!) / Swift.abs(theirLoss!) : nil
                return [
                    ours["name"] as? String ?? "?",
                    format(number(ours, "step_ms")), format(number(theirs, "step_ms")),
                    ratio(number(ours, "step_ms"), number(theirs, "step_ms")),
                    format(number(ours, "forward_ms")), format(number(theirs, "forward_ms")),
                    ratio(number(ours, "forward_ms"), number(theirs, "forward_ms")),
                    format(number(ours, "step_peak_mib"), 0) + " / " + format(number(theirs, "step_peak_mib"), 0),
                    relative.map { String(format: "%.1e", $0) } ?? "-",
                ]
            }
            out.append(
                TextTable(
                    header: [
                        "configuration", "step Swift ms", "step PyTorch ms", "ratio", "forward Swift ms",
                        "forward PyTorch ms", "ratio", "step peak MiB Swift / PyTorch", "loss rel. diff",
                    ], rows: rows
                ).markdown())
            out += ["", "## Achieved FLOP/s of the step", ""]
            let mm = (number(matmul.0, "gflops"), number(matmul.1, "gflops"))
            let flopRows = configs.map { ours, theirs -> [String] in
                let gflop = (number(theirs, "step_gflop_forward") ?? 0) + (number(theirs, "step_gflop_backward") ?? 0)
                let oursRate = number(ours, "step_ms").map { gflop / $0 * 1e3 }
                let theirsRate = number(theirs, "step_ms").map { gflop / $0 * 1e3 }
                return [
                    ours["name"] as? String ?? "?", format(gflop, 2), format(oursRate, 2), format(theirsRate, 2),
                    ratio(oursRate, mm.0), ratio(theirsRate, mm.1),
                ]
            }
            out.append(
                TextTable(
                    header: [
                        "configuration", "conv GFLOP per step", "Swift GFLOP/s", "PyTorch GFLOP/s",
                        "Swift / matmul", "PyTorch / matmul",
                    ], rows: flopRows
                ).markdown())
            out += [
                "",
                "Matrix product \(matmulSize)x\(matmulSize) float32: Swift \(format(mm.0, 1)) GFLOP/s, "
                    + "PyTorch \(format(mm.1, 1)) GFLOP/s. Convolution FLOPs are counted by forward hooks in the "
                    + "Python script (2 Cin/groups k_h k_w per output element; the backward pass counts the "
                    + "forward again for the weight gradient and again for the input gradient).",
            ]
        }
        let negatives = zip(swift["negative"] ?? [], python["negative"] ?? [])
        if !(swift["negative"] ?? []).isEmpty {
            out += ["", "## The negative term at the published resolution", ""]
            out.append(
                "q = l2normalize(softmax(z)) of logits z \(negativeShape) (two views of 512x1024), forward and backward:")
            out.append("")
            let rows = negatives.map { ours, theirs -> [String] in
                let form = ours["form"] as? String ?? "?"
                let stride = number(ours, "stride").map { String(Int($0)) } ?? "?"
                guard ours["fits"] as? Bool ?? false else {
                    return [form, stride, "does not fit (Gram matrix and its gradient > 8 GiB)", "", "", "", ""]
                }
                return [
                    form, stride, format(number(ours, "ms")), format(number(theirs, "ms")),
                    format(number(ours, "peak_mib"), 0), format(number(theirs, "peak_mib"), 0),
                    number(ours, "value").map { String(format: "%.7f", $0) } ?? "-",
                ]
            }
            out.append(
                TextTable(
                    header: ["form", "stride", "Swift ms", "PyTorch ms", "Swift peak MiB", "PyTorch peak MiB", "value"],
                    rows: rows
                ).markdown())
        }
        return out.joined(separator: "\n") + "\n"
    }
}
