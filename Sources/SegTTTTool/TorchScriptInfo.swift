import Foundation
import SegTTT
import SegTTTReports
import SegTTTKernels
import Torch
import TorchNN

/// What `segttt info` says of a TorchScript file: its forward's signature, whether it was
/// scripted or traced, its parameters and BatchNorm layers, what its forward pass returns
/// for a probe image, its card (or a template to fill in).
struct TorchScriptInfo {
    let url: URL
    /// The side of the square probe image [1, 3, S, S] run through the forward pass.
    static let probeSide = 256

    init(_ url: URL) {
        self.url = url
    }

    func report(listingTensors: Bool) throws -> String {
        let script: ScriptModule
        do {
            script = try ScriptModule(contentsOf: url)
        } catch let error as TorchError {
            throw ToolError(error.message)
        }
        let parameters = try script.namedParameters()
        let buffers = try script.namedBuffers()
        let graph = try script.graphSummary()
        // A second copy of the module, whose graph is rewritten as a model's is (the probe below
        // runs the first, as saved).
        let rewritten = try ScriptModule(contentsOf: url)
        let batchNorms = try rewritten.redirectBatchNorm { _, input, _ in input }
        let convolutions = try rewritten.redirectConvolutions(to: Kernels.convolution)
        let count = parameters.reduce(0) { $0 + $1.tensor.count }
        let kind =
            graph.readsTrainingFlag
            ? "scripted (its code reads the modules' training flag)"
            : graph.hasControlFlow ? "scripted" : "traced, or scripted without control flow"
        var lines = [
            url.path,
            "  format:     TorchScript, \(kind)",
            "  forward:    \(try script.schema())",
            "  parameters: \(count) numbers in \(parameters.count) tensors; \(buffers.count) buffers",
            "  batchnorm:  \(batchNorms.layers.count) layers that methods adapt (\(graph.batchNormCalls) calls in the graph"
                + (batchNorms.kept > 0 ? "; \(batchNorms.kept) left to libtorch: statistics or affine tensors not the layer's own, or eps and momentum computed at run time)" : ")"),
            "  convolution: \(convolutions) 2-d calls, run by SegTTT's conv2d "
                + "(its own kernels where faster)",
            "  graph:      \(graph.nodes) nodes once inlined; control flow: \(graph.hasControlFlow ? "yes" : "no")",
        ]
        let side = Self.probeSide
        let probe = try Tensor.zeros([1, 3, side, side])
        try script.train(false)
        var template = TorchScriptCard.template(name: url.deletingPathExtension().lastPathComponent)
        do {
            let described = try withNoGrad { try script.describeOutput(for: probe) }
            lines.append("  output:     \(described) for an input [1, 3, \(side), \(side)]")
            if let (output, logits) = try? Self.likelyLogits(script, probe) {
                template = TorchScriptCard.template(
                    name: url.deletingPathExtension().lastPathComponent, outputs: logits.shape[1], output: output,
                    lowerResolution: logits.shape[2] != side)
            }
        } catch let error as TorchError {
            lines.append("  output:     the forward pass failed on [1, 3, \(side), \(side)]: \(error.message.prefix(300))")
        }
        if let card = TorchScriptCard.file(beside: url) {
            lines.append("  card:       \(card.path)")
        } else {
            lines.append("  card:       none beside it; fill in this template and save it as "
                + url.deletingPathExtension().appendingPathExtension("yaml").lastPathComponent + " (or pass --card):")
            lines.append(template)
        }
        if listingTensors {
            let rows = (parameters + buffers).map { [$0.name, "\($0.tensor.shape)", "\($0.tensor.dtype)"] }
            lines.append(TextTable(header: ["tensor", "shape", "type"], rows: rows).terminal())
        }
        return lines.joined(separator: "\n")
    }

    /// The output form that holds 4-d logits, trying the tensor, the dict key "out" (then any
    /// key), then the first elements of a tuple.
    private static func likelyLogits(_ script: ScriptModule, _ probe: Tensor) throws -> (ScriptOutput, Tensor) {
        let candidates: [ScriptOutput] = [.tensor, .key("out"), .element(0), .element(1)]
        for candidate in candidates {
            if let logits = try? withNoGrad({ try script.forward(probe, output: candidate) }), logits.rank == 4 {
                return (candidate, logits)
            }
        }
        throw TorchError("no 4-d output")
    }
}
