// ESPNet: Efficient Spatial Pyramid of dilated convolutions for semantic segmentation.
// Mehta, Rastegari, Caspi, Shapiro, Hajishirzi, ECCV 2018.
//
// Wiring, names and constants follow the authors' released checkpoints (shared/MODELS.md):
// convolutions without bias, BatchNorm eps 1e-3, PReLU with one slope per channel.
import Foundation
import Torch
import TorchNN

/// conv (k x k, stride s, padding (k - 1) / 2 * d, dilation d, no bias), as ESPNet's `C` and `CDilated`.
final class ESPConv: Module, UnaryModule {
    let conv: Conv2d

    init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, dilation: Int = 1, generator: Generator?)
        throws
    {
        conv = try Conv2d(
            inChannels, outChannels, kernelSize: Pair(kernel), stride: Pair(stride),
            padding: Pair((kernel - 1) / 2 * dilation), dilation: Pair(dilation), bias: false, generator: generator)
        super.init()
        register("conv", conv)
    }

    func forward(_ input: Tensor) throws -> Tensor { try conv(input) }
}

/// BatchNorm (eps 1e-3) then PReLU, ESPNet's `BR`.
final class BNPReLU: Module, UnaryModule {
    let bn: BatchNorm2d
    let act: PReLU

    init(_ channels: Int) throws {
        bn = try BatchNorm2d(channels, eps: 1e-3)
        act = try PReLU(channels)
        super.init()
        register("bn", bn)
        register("act", act)
    }

    /// By the fused kernel where it applies (`BatchNorm2d.fusedForward(_:thenPReLU:)`).
    func forward(_ input: Tensor) throws -> Tensor {
        try bn.fusedForward(input, thenPReLU: act.weight.value) ?? act(bn(input))
    }
}

/// conv, BatchNorm (eps 1e-3), PReLU: ESPNet's `CBR`.
final class ConvBNPReLU: Module, UnaryModule {
    let conv: Conv2d
    let bn: BatchNorm2d
    let act: PReLU

    init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, generator: Generator?) throws {
        conv = try Conv2d(
            inChannels, outChannels, kernelSize: Pair(kernel), stride: Pair(stride), padding: Pair((kernel - 1) / 2),
            bias: false, generator: generator)
        bn = try BatchNorm2d(outChannels, eps: 1e-3)
        act = try PReLU(outChannels)
        super.init()
        register("conv", conv)
        register("bn", bn)
        register("act", act)
    }

    func forward(_ input: Tensor) throws -> Tensor {
        let x = try conv(input)
        return try bn.fusedForward(x, thenPReLU: act.weight.value) ?? act(bn(x))
    }
}

/// The ESP block: reduce to n = Cout / 5 channels (`c1`), five parallel 3x3 convolutions
/// with dilations 1, 2, 4, 8, 16 (`d1` has Cout - 4n outputs, the others n), hierarchical
/// feature fusion a1 = d2, a2 = a1 + d4, a3 = a2 + d8, a4 = a3 + d16, concatenated
/// [d1, a1, a2, a3, a4] to Cout channels, then:
/// - `downsampling`: `c1` is 3x3 stride 2; BatchNorm `bn` and PReLU `act`, no residual;
/// - otherwise: `c1` is 1x1; the input is added when `residual`, then BR named `bn`.
final class ESPBlock: Module, UnaryModule {
    let c1: ESPConv
    let branches: [ESPConv]
    let downsampling: Bool
    let residual: Bool
    private let downsamplingNorm: BNPReLU?
    private let outputNorm: BNPReLU?

    init(_ inChannels: Int, _ outChannels: Int, downsampling: Bool, residual: Bool, generator: Generator?) throws {
        let n = outChannels / 5
        let n1 = outChannels - 4 * n
        self.downsampling = downsampling
        self.residual = residual
        c1 = try ESPConv(
            inChannels, n, kernel: downsampling ? 3 : 1, stride: downsampling ? 2 : 1, generator: generator)
        branches = try [1, 2, 4, 8, 16].map { d in
            try ESPConv(n, d == 1 ? n1 : n, kernel: 3, dilation: d, generator: generator)
        }
        let norm = try BNPReLU(outChannels)
        downsamplingNorm = downsampling ? norm : nil
        outputNorm = downsampling ? nil : norm
        super.init()
        register("c1", c1)
        for (d, branch) in zip([1, 2, 4, 8, 16], branches) { register("d\(d)", branch) }
        if downsampling {
            // The down-sampling block names its BatchNorm and PReLU directly: `bn.*`, `act.weight`.
            register("bn", norm.bn)
            register("act", norm.act)
        } else {
            register("bn", norm)
        }
    }

    func forward(_ input: Tensor) throws -> Tensor {
        let reduced = try c1(input)
        let outputs = try branches.map { try $0(reduced) }
        var fused = [outputs[0], outputs[1]]
        for output in outputs.dropFirst(2) { fused.append(try fused[fused.count - 1] + output) }
        let combined = try Tensor.cat(fused, dim: 1)
        if residual { try combined.add_(input) }  // in place: cat keeps nothing for its backward
        return try (downsamplingNorm ?? outputNorm).map { try $0(combined) } ?? combined
    }
}

/// One level of ESPNet's input projection: average pooling 3x3, stride 2, padding 1 (padding
/// counted in the divisor). The published code pools the normalised image once for 1/2 and
/// twice, from the image again, for 1/4; the encoder pools the 1/2 image once more instead,
/// the same values with one pooling fewer.
func inputProjection(_ image: Tensor) throws -> Tensor {
    try avgPool2d(image, kernelSize: 3, stride: 2, padding: 1, countIncludePad: true)
}

/// The ESPNet-C encoder (prefix `encoder.`): logits at 1/8 resolution and the features the
/// decoder reuses.
final class ESPNetEncoder: Module {
    let level1: ConvBNPReLU
    let b1: BNPReLU
    let level2_0: ESPBlock
    let level2: Sequential
    let b2: BNPReLU
    let level3_0: ESPBlock
    let level3: Sequential
    let b3: BNPReLU
    let classifier: ESPConv

    init(classes: Int, p: Int, q: Int, generator: Generator?) throws {
        level1 = try ConvBNPReLU(3, 16, kernel: 3, stride: 2, generator: generator)
        b1 = try BNPReLU(16 + 3)
        level2_0 = try ESPBlock(16 + 3, 64, downsampling: true, residual: false, generator: generator)
        level2 = Sequential(
            try (0..<p).map { _ in try ESPBlock(64, 64, downsampling: false, residual: true, generator: generator) })
        b2 = try BNPReLU(128 + 3)
        level3_0 = try ESPBlock(128 + 3, 128, downsampling: true, residual: false, generator: generator)
        level3 = Sequential(
            try (0..<q).map { _ in try ESPBlock(128, 128, downsampling: false, residual: true, generator: generator) })
        b3 = try BNPReLU(256)
        classifier = try ESPConv(256, classes, kernel: 1, generator: generator)
        super.init()
        register("level1", level1)
        register("b1", b1)
        register("level2_0", level2_0)
        register("level2", level2)
        register("b2", b2)
        register("level3_0", level3_0)
        register("level3", level3)
        register("b3", b3)
        register("classifier", classifier)
    }

    /// Features of `image` [N, 3, H, W]: o0 (level1, 16 ch, 1/2), o0c (b1, 19 ch, 1/2),
    /// o1c (b2, 131 ch, 1/4) and the encoder's logits (1/8).
    func features(_ image: Tensor) throws -> (o0: Tensor, o0c: Tensor, o1c: Tensor, logits: Tensor) {
        let o0 = try level1(image)
        let half = try inputProjection(image)
        let quarter = try inputProjection(half)
        let o0c = try b1(Tensor.cat([o0, half], dim: 1))
        let o10 = try level2_0(o0c)
        let o1 = try level2(o10)
        let o1c = try b2(Tensor.cat([o1, o10, quarter], dim: 1))
        let o20 = try level3_0(o1c)
        let o2 = try level3(o20)
        let o2c = try b3(Tensor.cat([o20, o2], dim: 1))
        return (o0, o0c, o1c, try classifier(o2c))
    }
}

/// ESPNet with its decoder: logits at the input's resolution, for frames of any size.
public final class ESPNet: Module, SegmentationModel {
    /// Which level-1 features the decoder's last convolution concatenates.
    public enum Skip: String, Sendable, Codable {
        /// o0, 16 channels (the Cityscapes checkpoints).
        case level1 = "o0"
        /// o0c, 19 channels: level1 with the projected image (the CamVid checkpoint).
        case level1WithImage = "o0c"
    }

    public let card: ModelCard
    public let p: Int
    public let q: Int
    public let skip: Skip
    public let headModuleNames = ["classifier"]
    let encoder: ESPNetEncoder
    let levelThreeProjection: ESPConv
    let br: BatchNorm2d
    let upLevel3: Sequential
    let combine: Sequential
    let upLevel2: Sequential
    let conv: ConvBNPReLU
    let classifier: ConvTranspose2d

    /// A fresh network with `outputs` channels, p and q ESP blocks at levels 2 and 3.
    ///
    /// - Throws: `TorchError` when `outputs` is below 1 or p or q is negative.
    public init(
        outputs: Int, p: Int = 2, q: Int = 8, skip: Skip = .level1, card: ModelCard? = nil, generator: Generator? = nil
    )
        throws
    {
        guard outputs >= 1, p >= 0, q >= 0 else {
            throw TorchError("ESPNet: outputs \(outputs), p \(p), q \(q): give at least one output and p, q of 0 or more")
        }
        self.p = p
        self.q = q
        self.skip = skip
        self.card = card ?? ESPNet.defaultCard(outputs: outputs, p: p, q: q)
        let k = outputs
        encoder = try ESPNetEncoder(classes: k, p: p, q: q, generator: generator)
        levelThreeProjection = try ESPConv(128 + 3, k, kernel: 1, generator: generator)
        br = try BatchNorm2d(k, eps: 1e-3)
        upLevel3 = Sequential(try ConvTranspose2d(k, k, kernelSize: 2, stride: 2, bias: false, generator: generator))
        combine = Sequential(
            try BNPReLU(2 * k), try ESPBlock(2 * k, k, downsampling: false, residual: false, generator: generator))
        upLevel2 = Sequential(
            try ConvTranspose2d(k, k, kernelSize: 2, stride: 2, bias: false, generator: generator), try BNPReLU(k))
        conv = try ConvBNPReLU((skip == .level1 ? 16 : 19) + k, k, kernel: 3, generator: generator)
        classifier = try ConvTranspose2d(k, k, kernelSize: 2, stride: 2, bias: false, generator: generator)
        super.init()
        register("encoder", encoder)
        register("level3_C", levelThreeProjection)
        register("br", br)
        register("up_l3", upLevel3)
        register("combine_l2_l3", combine)
        register("up_l2", upLevel2)
        register("conv", conv)
        register("classifier", classifier)
    }

    /// The encoder halves the input three times, so frames are padded to sides that are
    /// multiples of 8 (`withSidesPadded`) and the logits cropped back.
    public static let sideMultiple = 8

    public func logits(_ input: Tensor) throws -> Tensor {
        try withSidesPadded(input, toMultipleOf: Self.sideMultiple) { try classifier(decoderFeatures($0)) }
    }

    /// The decoder's last features [N, K, H/2, W/2], the classifier's input (a transposed
    /// convolution that doubles the resolution), and the logits.
    public func classifierFeatures(_ input: Tensor) throws -> (features: Tensor, logits: Tensor)? {
        var features: Tensor?
        let logits = try withSidesPadded(input, toMultipleOf: Self.sideMultiple) { padded in
            let decoded = try decoderFeatures(padded)
            features = decoded
            return try classifier(decoded)
        }
        guard let features else { return nil }
        return (features, logits)
    }

    /// Encoder, level-3 projection, the two upsampling stages and the last 3x3 convolution.
    private func decoderFeatures(_ input: Tensor) throws -> Tensor {
        let f = try encoder.features(input)
        let u3 = try upLevel3(br(f.logits))
        let c3 = try levelThreeProjection(f.o1c)
        let up = try upLevel2(combine(Tensor.cat([c3, u3], dim: 1)))
        return try conv(Tensor.cat([up, skip == .level1 ? f.o0 : f.o0c], dim: 1))
    }

    // MARK: checkpoints

    /// Loads an ESPNet checkpoint (the authors' .pth files, or safetensors written by SegTTT),
    /// reading the number of outputs, p, q and the skip variant from its tensor shapes.
    ///
    /// - Parameter card: the model's card; nil = the released checkpoints' card for its
    ///   number of outputs (`ModelFile.load` passes the card a SegTTT file carries).
    public static func load(_ url: URL, card: ModelCard? = nil) throws -> ESPNet {
        let state = try Checkpoint.load(url).removingDataParallelPrefix()
        guard let classifier = state["encoder.classifier.conv.weight"], let last = state["conv.conv.weight"] else {
            throw CheckpointError(
                path: url.path,
                reason: "has no encoder.classifier.conv.weight or conv.conv.weight, so it is not an ESPNet checkpoint;"
                    + " check --model")
        }
        let outputs = classifier.shape[0]
        let p = blockCount(state, prefix: "encoder.level2.")
        let q = blockCount(state, prefix: "encoder.level3.")
        let skipChannels = last.shape[1] - outputs
        guard let skip = [Skip.level1: 16, .level1WithImage: 19].first(where: { $0.value == skipChannels })?.key else {
            throw CheckpointError(
                path: url.path,
                reason:
                    "conv.conv.weight has \(last.shape[1]) inputs for \(outputs) outputs; ESPNet expects 16 or 19 more")
        }
        if let card, card.numOutputs != outputs {
            throw CheckpointError(
                path: url.path, reason: "has \(outputs) outputs but its model card lists \(card.numOutputs)")
        }
        let model = try ESPNet(outputs: outputs, p: p, q: q, skip: skip, card: card)
        do {
            try model.load(state)
        } catch let mismatch as StateDictMismatch {
            throw CheckpointError(path: url.path, reason: mismatch.description)
        }
        model.eval()
        return model
    }

    private static func blockCount(_ state: StateDict, prefix: String) -> Int {
        Set(
            state.names.filter { $0.hasPrefix(prefix) }.compactMap {
                $0.dropFirst(prefix.count).split(separator: ".").first
            }
        )
        .count
    }

    /// The card of the released checkpoints: 20 outputs = Cityscapes (19 classes and a
    /// background output), 12 = CamVid (11 classes and void); other counts get numbered classes
    /// and the Cityscapes normalisation.
    public static func defaultCard(outputs: Int, p: Int, q: Int) -> ModelCard {
        let name = "espnet (p = \(p), q = \(q))"
        if outputs == 12 {
            return ModelCard(
                name: name, classNames: ClassNames.camVid, numOutputs: outputs,
                normalization: InputNormalization(
                    channelOrder: .bgr, mean: [110.3, 108.4, 105.0], std: [72.1, 72.7, 69.9], scale: 1 / 255))
        }
        let classes = outputs == 20 ? ClassNames.cityscapes : (0..<outputs).map { "class \($0)" }
        return ModelCard(
            name: name, classNames: classes, numOutputs: outputs,
            normalization: InputNormalization(
                channelOrder: .bgr, mean: [72.3923111, 82.90893555, 73.15840149],
                std: [45.3192215, 46.15289307, 44.91483307], scale: 1 / 255))
    }
}

/// `--model espnet`: the authors' checkpoints and SegTTT's own safetensors.
public struct ESPNetFamily: ModelFamily {
    public init() {}
    public var name: String { "espnet" }
    public var summary: String { "ESPNet; outputs, p, q and the skip variant come from the checkpoint" }

    public func load(_ url: URL, cardFile: URL?) throws -> any SegmentationModel {
        try refuseCardFile(cardFile)
        return try ESPNet.load(url, card: ModelFile.card(in: url))
    }

    /// Reads "p" and "q" (blocks at levels 2 and 3; 2 and 8 when absent).
    public func fresh(classNames: [String], architecture: [String: Int], generator: Generator) throws
        -> (any SegmentationModel)?
    {
        let (p, q) = (architecture["p"] ?? 2, architecture["q"] ?? 8)
        var card = ESPNet.defaultCard(outputs: classNames.count, p: p, q: q)
        card.classNames = classNames
        return try ESPNet(outputs: classNames.count, p: p, q: q, card: card, generator: generator)
    }
}
