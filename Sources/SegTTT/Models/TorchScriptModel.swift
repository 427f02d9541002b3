import Foundation
import SegTTTKernels
import Torch
import TorchNN

/// A user's own network, exported from PyTorch with `torch.jit.script` or `torch.jit.trace`
/// and `torch.jit.save`, as a `SegmentationModel` that every method adapts as it adapts the
/// native ones.
///
/// The file's parameters and buffers are this module's (shared tensors, state-dict names and
/// order), in a tree of modules that mirrors the file's submodules. Every BatchNorm call of
/// the forward graph that normalises with a submodule's running statistics is redirected to
/// a `BatchNorm2d` over that submodule's tensors, so the statistics each layer normalises
/// with (running, batch, BN prior, moving average) are the method's choice, exactly as in
/// the native networks; the layer's eps and momentum are the graph's. Its 2-d convolutions
/// run through `conv2d` and `convTranspose2d`, which pick SegTTT's kernels where they beat
/// libtorch's, as the native networks' do.
public final class TorchScriptModel: Module, SegmentationModel {
    public let script: ScriptModule
    public let scriptCard: TorchScriptCard
    public var card: ModelCard { scriptCard.card }
    public var headModuleNames: [String] { scriptCard.headModules }
    /// The BatchNorm calls the forward graph leaves to libtorch (statistics that are not a
    /// submodule's buffers, or eps computed at run time): no method changes how they normalise.
    public let unredirectedBatchNormCalls: Int
    /// The 2-d convolutions of the forward graph, which run through `conv2d` and
    /// `convTranspose2d` (SegTTT's kernels where they are faster), as in the native networks.
    public let convolutionCalls: Int

    /// Loads `url` with `card`, in evaluation mode.
    ///
    /// - Throws: `CheckpointError` naming the file: not loadable as TorchScript (with the
    ///   reason and the fix), a head module the file lacks.
    public init(contentsOf url: URL, card: TorchScriptCard) throws {
        try Checkpoint.verifyArchive(url)
        do {
            script = try ScriptModule(contentsOf: url)
        } catch let error as TorchError {
            throw CheckpointError(path: url.path, reason: Self.firstLine(of: error.message, without: url.path))
        }
        scriptCard = card
        let layers = LayerList()
        let (redirected, kept) = try script.redirectBatchNorm { index, input, slope in
            let layer = layers.layers[index]
            guard let slope else { return try layer.forward(input) }
            return try layer.fusedForward(input, thenPReLU: slope) ?? prelu(layer.forward(input), weight: slope)
        }
        unredirectedBatchNormCalls = kept
        convolutionCalls = try script.redirectConvolutions(to: Kernels.convolution)
        super.init()

        let parameters = Dictionary(grouping: try script.namedParameters(), by: { Self.owner(of: $0.name) })
        let buffers = Dictionary(grouping: try script.namedBuffers(), by: { Self.owner(of: $0.name) })
        let batchNorms = Dictionary(redirected.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
        var modules: [String: Module] = ["": self]
        for (path, type) in try script.submodules() {
            var own = try (parameters[path] ?? []).map { (Self.leaf(of: $0.name), try Parameter($0.tensor, trainable: $0.tensor.requiresGrad)) }
            var ownBuffers = (buffers[path] ?? []).map { entry -> (String, Buffer) in
                let name = Self.leaf(of: entry.name)
                return (name, Buffer(entry.tensor, optionalInCheckpoint: name == "num_batches_tracked"))
            }
            let module: Module
            if path.isEmpty {
                module = self
            } else if let call = batchNorms[path] {
                func take<T>(_ name: String, from list: inout [(String, T)]) -> T? {
                    guard let index = list.firstIndex(where: { $0.0 == name }) else { return nil }
                    return list.remove(at: index).1
                }
                guard let mean = take("running_mean", from: &ownBuffers), let variance = take("running_var", from: &ownBuffers)
                else {
                    throw CheckpointError(
                        path: url.path, reason: "BatchNorm \(path) normalises with statistics that are not its buffers")
                }
                let layer = try BatchNorm2d(
                    weight: take("weight", from: &own), bias: take("bias", from: &own), runningMean: mean,
                    runningVar: variance, numBatchesTracked: take("num_batches_tracked", from: &ownBuffers),
                    eps: call.eps, momentum: call.momentum)
                module = layer
            } else {
                module = ScriptedSubmodule(type: type)
            }
            for (name, parameter) in own { module.registerParameter(name, parameter) }
            for (name, buffer) in ownBuffers { module.registerBuffer(name, buffer) }
            if !path.isEmpty {
                guard let parent = modules[Self.owner(of: path)] else {
                    throw CheckpointError(path: url.path, reason: "submodule \(path) comes before its parent")
                }
                parent.register(Self.leaf(of: path), module)
            }
            modules[path] = module
        }
        // The layers in the order of the redirected calls' indices.
        layers.layers = try redirected.map { call in
            guard let layer = modules[call.path] as? BatchNorm2d else {
                throw CheckpointError(path: url.path, reason: "its graph normalises with \(call.path), which is no submodule")
            }
            return layer
        }
        let names = Set(modules.keys)
        if let missing = card.headModules.first(where: { !names.contains($0) }) {
            let top = modules.keys.filter { !$0.isEmpty && !$0.contains(".") }.sorted().joined(separator: ", ")
            throw CheckpointError(
                path: url.path, reason: "has no submodule '\(missing)' for the card's head (its top-level modules: \(top))")
        }
        eval()
    }

    /// Logits [N, K, H, W] at the input's resolution: the frame padded to the card's side
    /// multiple, the forward pass's logits taken from its output, brought to the padded
    /// input's resolution as the card says, cropped back.
    public func logits(_ input: Tensor) throws -> Tensor {
        try withSidesPadded(input, toMultipleOf: scriptCard.sideMultiple) { x in
            let y = try script.forward(x, output: scriptCard.output)
            guard y.rank == 4, y.shape[0] == x.shape[0], y.shape[1] == card.numOutputs else {
                throw TorchError(
                    "\(script.url.lastPathComponent): the forward pass gave \(y.shape) for an input \(x.shape); "
                        + "the card expects [\(x.shape[0]), \(card.numOutputs), H, W] (classes plus no_class_outputs)")
            }
            if y.shape[2] == x.shape[2], y.shape[3] == x.shape[3] { return y }
            guard let mode = scriptCard.upsampling else {
                throw TorchError(
                    "\(script.url.lastPathComponent): the logits are \(y.shape[2])x\(y.shape[3]) for an input of "
                        + "\(x.shape[2])x\(x.shape[3]); set logits_resolution: lower in the card")
            }
            return try interpolate(y, size: Pair(x.shape[2], x.shape[3]), mode: mode)
        }
    }

    /// Training or evaluation mode here, in the mirrored modules and in the file's modules
    /// (whose `training` flag scripted code reads, for dropout and the like).
    public override func train(_ mode: Bool = true) {
        super.train(mode)
        // Setting a flag on modules that exist cannot fail; a failure would leave the file's
        // own mode as it was, which BatchNorm does not read (the mirrored layers decide).
        try? script.train(mode)
    }

    /// Moves the file's tensors, which the mirrored parameters and buffers share, in place.
    public override func move(to device: Device) throws {
        try script.move(to: device)
    }

    static func owner(of name: String) -> String {
        name.lastIndex(of: ".").map { String(name[..<$0]) } ?? ""
    }

    static func leaf(of name: String) -> String {
        name.lastIndex(of: ".").map { String(name[name.index(after: $0)...]) } ?? name
    }

    /// libtorch's message without the file's path (the error names it) and without the
    /// TorchScript traceback after its first line.
    static func firstLine(of message: String, without path: String) -> String {
        var line = message.split(separator: "\n").first.map(String.init) ?? message
        if line.hasPrefix(path + ": ") { line.removeFirst(path.count + 2) }
        if line.hasPrefix(path + " ") { line.removeFirst(path.count + 1) }
        return line
    }
}

/// A submodule of a TorchScript file, holding its own parameters and buffers under their
/// names; it computes nothing itself (the file's graph does).
public final class ScriptedSubmodule: Module {
    /// Its TorchScript type, "__torch__.torch.nn.modules.conv.Conv2d".
    public let type: String

    init(type: String) {
        self.type = type
        super.init()
    }
}

/// The BatchNorm layers that redirected calls index, filled once the mirror is built.
private final class LayerList {
    var layers: [BatchNorm2d] = []
}

/// `--model torchscript`: a user's network saved by `torch.jit.save`, with its model card.
public struct TorchScriptFamily: ModelFamily {
    public init() {}
    public var name: String { "torchscript" }
    public var summary: String { "any network saved by torch.jit.save, with a model card (FILE.yaml or --card)" }

    public func load(_ url: URL, cardFile: URL?) throws -> any SegmentationModel {
        guard let file = cardFile ?? TorchScriptCard.file(beside: url) else {
            let stem = url.deletingPathExtension().lastPathComponent
            throw CheckpointError(
                path: url.path,
                reason: "has no model card beside it (\(stem).yaml or \(stem).json); write one (`segttt info "
                    + "\(url.path)` prints a template to fill in) or give one with --card FILE")
        }
        return try TorchScriptModel(contentsOf: url, card: TorchScriptCard.read(file))
    }

    /// nil: TorchScript networks are trained in PyTorch, where their code lives.
    public func fresh(classNames: [String], architecture: [String: Int], generator: Generator) throws
        -> (any SegmentationModel)?
    {
        nil
    }
}
