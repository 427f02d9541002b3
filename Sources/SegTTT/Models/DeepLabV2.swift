// DeepLabV2 "DeeplabMulti": the segmentation network of the OCL paper and of the
// checkpoints it adapts.
//
// Chen et al., "DeepLab: Semantic Image Segmentation with Deep Convolutional Nets, Atrous
// Convolution, and Fully Connected CRFs", TPAMI 2017 (the network); Tsai et al., "Learning
// to Adapt Structured Output Space for Semantic Segmentation" (AdaptSegNet), CVPR 2018
// (the two-head "multi" variant); Chen et al., "Domain Adaptation for Semantic Segmentation
// with Maximum Squares Loss", ICCV 2019 (the code and checkpoints the OCL paper uses:
// `graphs/models/deeplab_multi.py`); Zhang et al., "Test-Time Training for Semantic
// Segmentation with Output Contrastive Loss", arXiv 2311.07877.
//
// Published conventions reproduced here, from MaxSquare's `deeplab_multi.py`:
// - `Classifier_Module.forward` returns from inside its summing loop, so each head sums only
//   its dilation-6 and dilation-12 branches; the dilation-18 and -24 convolutions exist (and
//   are in every checkpoint) but never run. The checkpoints were trained that way.
// - Only the stem BatchNorm `bn1` has `requires_grad = False`; every other BatchNorm affine
//   parameter is trainable. (AdaptSegNet, which MaxSquare's file derives from, also froze
//   `bn1`...`bn3` of every bottleneck and every `downsample.1`: `FrozenBatchNorm.all`.)
// - Fresh weights: every convolution weight, backbone included, N(0, 0.01) (the loop over
//   `self.modules()` at the end of `ResNetMulti.__init__`); convolution biases (the heads'
//   only) keep PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)); BatchNorm weight 1,
//   bias 0. In practice the backbone is then replaced by ImageNet weights or a checkpoint.
import Foundation
import SegTTTKernels
import Torch
import TorchNN

/// DeepLabV2 with two classifier heads ("DeeplabMulti"), on a Caffe-style dilated ResNet.
///
/// Wiring (names as in the published checkpoints):
/// `conv1` 7x7/2 pad 3 (no bias) -> `bn1` -> ReLU -> max-pool 3x3/2 pad 1 (ceil mode) ->
/// `layer1` (64 planes) -> `layer2` (128, stride 2) -> `layer3` (256, dilation 2) ->
/// `layer4` (512, dilation 4); `layer5` classifies `layer3`'s output (auxiliary head),
/// `layer6` classifies `layer4`'s (main head). Output stride 8: a 512x1024 input gives
/// 65x129 features. Both heads' logits are upsampled bilinearly (align_corners = true) to the
/// input size.
///
/// Input: a BGR image minus the mean (104.00698793, 116.66876762, 122.67891434), no scaling
/// (see `card.normalization`).
public final class DeepLabV2: Module, SegmentationModel {
    /// Which branches of a classifier head are summed.
    public enum ClassifierBranches: String, CaseIterable, Sendable, Codable {
        /// The published forward: dilation 6 + dilation 12 only. Use it with published checkpoints.
        case published
        /// All four branches, dilations 6 + 12 + 18 + 24, as the DeepLab paper describes.
        case fourBranch
    }

    /// What to build.
    public struct Configuration: Equatable, Sendable, Codable {
        /// Backbone depth; ResNet-101 is the published one, ResNet-18/34 run on a CPU.
        public var backbone: ResNetDepth
        /// Output channels of both heads (19 for Cityscapes, 16 or 13 for the SYNTHIA protocols).
        public var numClasses: Int
        /// Which head branches are summed (`published` unless training a new network).
        public var classifier: ClassifierBranches
        /// Which BatchNorm layers have frozen affine parameters (`stem`, as MaxSquare and OCL).
        public var frozenBatchNorm: FrozenBatchNorm

        public init(
            backbone: ResNetDepth = .resnet101, numClasses: Int = 19, classifier: ClassifierBranches = .published,
            frozenBatchNorm: FrozenBatchNorm = .stem
        ) {
            self.backbone = backbone
            self.numClasses = numClasses
            self.classifier = classifier
            self.frozenBatchNorm = frozenBatchNorm
        }
    }

    /// Why a checkpoint could not be made into a DeepLabV2. Names the file.
    public struct LoadError: Error, CustomStringConvertible {
        /// The checkpoint file (or a description of the state dict's source).
        public let path: String
        /// What is wrong and what to do.
        public let reason: String
        /// How the checkpoint differs from the model, when that is the problem.
        public let mismatch: StateDictMismatch?

        public var description: String { "\(path): \(reason)" }
    }

    /// What was built; `classifier` follows the property of that name.
    public private(set) var configuration: Configuration
    public let conv1: Conv2d
    public let bn1: BatchNorm2d
    public let layer1: Sequential
    public let layer2: Sequential
    public let layer3: Sequential
    public let layer4: Sequential
    /// Auxiliary head, on `layer3`.
    public let layer5: DeepLabV2Classifier
    /// Main head, on `layer4`.
    public let layer6: DeepLabV2Classifier
    /// Whether `features` lays a CPU input out channels last (NHWC) before the stem, so that
    /// the backbone's activations stay in that layout: oneDNN's convolutions read and write it
    /// as it is, where a PyTorch-default (NCHW) tensor is reordered to oneDNN's blocked layout
    /// and back at every convolution, forward and backward. By default where the Winograd
    /// kernels run (`Kernels.winogradAvailable`: oneDNN's AVX-512 code), with which it was
    /// measured faster; under oneDNN's AVX2 code, and with its direct 3x3 convolutions, NCHW
    /// was faster (docs/BENCHMARKS.md). The values are the same up to float rounding.
    public var channelsLastOnCPU = Kernels.winogradAvailable

    /// Builds the network with fresh weights drawn as the published code draws them.
    ///
    /// Every convolution weight, in module order, from N(0, 0.01), followed by its bias (heads
    /// only) from U(-1/sqrt(fanIn), 1/sqrt(fanIn)); BatchNorm weight 1, bias 0, running mean 0,
    /// variance 1. With a seeded `generator` the weights equal those of PyTorch replaying the
    /// same draws (`torch.empty(shape).normal_(0, 0.01, generator=g)`, ...) in the same order.
    /// The model starts in training mode, as a PyTorch module does.
    ///
    /// - Parameters:
    ///   - configuration: backbone, classes, head variant, frozen BatchNorm layers.
    ///   - generator: the random stream; nil draws from libtorch's global generator.
    public convenience init(_ configuration: Configuration = Configuration(), generator: Generator? = nil) throws {
        try self.init(configuration, drawingWeights: true, generator: generator)
    }

    private init(_ configuration: Configuration, drawingWeights: Bool, generator: Generator?) throws {
        guard configuration.numClasses > 0 else {
            throw TorchError("DeepLabV2: numClasses must be positive, got \(configuration.numClasses)")
        }
        self.configuration = configuration
        let depth = configuration.backbone
        conv1 = try Conv2d(3, 64, kernelSize: 7, stride: 2, padding: 3, bias: false)
        bn1 = try BatchNorm2d(64, eps: 1e-5)
        var channels = 64
        var layers: [Sequential] = []
        // (planes, stride, dilation) of layer1 ... layer4.
        for (index, (planes, stride, dilation)) in [(64, 1, 1), (128, 2, 1), (256, 1, 2), (512, 1, 4)].enumerated() {
            let (layer, out) = try makeResNetLayer(
                depth: depth, inChannels: channels, planes: planes, count: depth.blockCounts[index], stride: stride,
                dilation: dilation)
            layers.append(layer)
            channels = out
        }
        (layer1, layer2, layer3, layer4) = (layers[0], layers[1], layers[2], layers[3])
        let features = depth.featureChannels
        layer5 = try DeepLabV2Classifier(
            inChannels: features.layer3, numClasses: configuration.numClasses, branches: configuration.classifier)
        layer6 = try DeepLabV2Classifier(
            inChannels: features.layer4, numClasses: configuration.numClasses, branches: configuration.classifier)
        super.init()
        register("conv1", conv1)
        register("bn1", bn1)
        register("layer1", layer1)
        register("layer2", layer2)
        register("layer3", layer3)
        register("layer4", layer4)
        register("layer5", layer5)
        register("layer6", layer6)
        if drawingWeights { try drawPublishedWeights(generator: generator) }
        let frozen = configuration.frozenBatchNorm == .stem ? [bn1] : batchNormLayers
        for bn in frozen {
            try bn.weight?.setTrainable(false)
            try bn.bias?.setTrainable(false)
        }
    }

    /// The published initialisation (see the initializer), in `namedModules()` order.
    private func drawPublishedWeights(generator: Generator?) throws {
        try withNoGrad {
            for (_, module) in namedModules() {
                if let conv = module as? Conv2d {
                    let shape = conv.weight.value.shape
                    try conv.weight.value.copy_(Tensor.normal(shape, mean: 0, std: 0.01, generator: generator))
                    if let bias = conv.bias {
                        let bound = 1 / Foundation.sqrt(Double(Initialization.fanIn(shape)))
                        try bias.value.copy_(
                            Tensor.uniform(bias.value.shape, low: -bound, high: bound, generator: generator))
                    }
                } else if let bn = module as? BatchNorm2d {
                    try bn.weight?.value.fill_(1)
                    try bn.bias?.value.fill_(0)
                    try bn.runningMean.value.fill_(0)
                    try bn.runningVar.value.fill_(1)
                }
            }
        }
    }

    // MARK: forward

    /// Which head branches are summed; changing it keeps the weights.
    public var classifier: ClassifierBranches {
        get { layer6.branches }
        set {
            layer5.branches = newValue
            layer6.branches = newValue
            configuration.classifier = newValue
        }
    }

    /// The backbone's feature maps at output stride 8.
    ///
    /// - Parameter input: a normalised image batch [N, 3, H, W].
    /// - Returns: `layer3` [N, C3, h, w] and `layer4` [N, C4, h, w] (C3, C4 = 1024, 2048 for
    ///   bottleneck backbones, 256, 512 for basic ones), (h, w) = `featureSize(forInput:)`.
    public func features(_ input: Tensor) throws -> (layer3: Tensor, layer4: Tensor) {
        guard input.rank == 4, input.shape[1] == 3 else {
            throw TorchError(
                "DeepLabV2 expects a normalised image batch [N, 3, H, W], got \(input.shape); "
                    + "prepare images with card.normalization.apply(_:)")
        }
        let input = channelsLastOnCPU && input.device == .cpu ? try input.contiguous(.channelsLast) : input
        var x = try bn1(conv1(input)).relu()
        x = try maxPool2d(x, kernelSize: 3, stride: 2, padding: 1, ceilMode: true)
        let x3 = try layer3(layer2(layer1(x)))
        return (x3, try layer4(x3))
    }

    /// Both heads' logits at output stride 8, before upsampling.
    ///
    /// - Parameter input: a normalised image batch [N, 3, H, W].
    /// - Returns: `main` (layer6 on layer4) and `auxiliary` (layer5 on layer3), each
    ///   [N, numClasses, h, w] with (h, w) = `featureSize(forInput:)`.
    public func lowResolutionLogits(_ input: Tensor) throws -> (main: Tensor, auxiliary: Tensor) {
        let (x3, x4) = try features(input)
        return (try layer6(x4), try layer5(x3))
    }

    /// The published forward: both heads' logits upsampled to the input size.
    ///
    /// - Parameter input: a normalised image batch [N, 3, H, W].
    /// - Returns: `main` (layer6, what test-time training uses) and `auxiliary` (layer5),
    ///   each [N, numClasses, H, W], upsampled bilinearly with align_corners = true.
    public func forward(_ input: Tensor) throws -> (main: Tensor, auxiliary: Tensor) {
        let (main, auxiliary) = try lowResolutionLogits(input)
        return (try upsampled(main, like: input), try upsampled(auxiliary, like: input))
    }

    public func callAsFunction(_ input: Tensor) throws -> (main: Tensor, auxiliary: Tensor) {
        try forward(input)
    }

    /// The main head's logits [N, numClasses, H, W] at the input's resolution: `forward`'s
    /// `main` without computing the auxiliary head, which test-time training does not use.
    public func logits(_ input: Tensor) throws -> Tensor {
        try upsampled(layer6(features(input).layer4), like: input)
    }

    /// layer4's features [N, 2048, h, w] at stride 8, layer6's input, and the logits.
    public func classifierFeatures(_ input: Tensor) throws -> (features: Tensor, logits: Tensor)? {
        let features = try features(input).layer4
        return (features, try upsampled(layer6(features), like: input))
    }

    /// Stride-8 logits upsampled bilinearly (align_corners = true) to the input's size.
    private func upsampled(_ logits: Tensor, like input: Tensor) throws -> Tensor {
        try interpolate(logits, size: Pair(input.shape[2], input.shape[3]), mode: .bilinear(alignCorners: true))
    }

    public var headModuleNames: [String] { ["layer5", "layer6"] }

    /// Spatial size of the stride-8 features for an input of `size`: the stem convolution
    /// gives floor((H - 1) / 2) + 1, the ceil-mode max-pool floor(H1 / 2) + 1, layer2's stride
    /// floor((H2 - 1) / 2) + 1; layer3 and layer4 keep the size. 512x1024 -> 65x129.
    public static func featureSize(forInput size: Pair) -> Pair {
        func side(_ n: Int) -> Int {
            let stem = (n - 1) / 2 + 1
            let pooled = stem / 2 + 1
            return (pooled - 1) / 2 + 1
        }
        return Pair(side(size.height), side(size.width))
    }

    // MARK: model card

    public var card: ModelCard {
        ModelCard(
            name: "deeplabv2-multi (\(configuration.backbone), \(classifier.rawValue) classifier)",
            classNames: DeepLabV2.classNames(count: configuration.numClasses),
            numOutputs: configuration.numClasses,
            normalization: DeepLabV2.normalization)
    }

    /// BGR, minus the per-channel mean of the Caffe ImageNet models, no division.
    public static let normalization = InputNormalization(
        channelOrder: .bgr, mean: [104.00698793, 116.66876762, 122.67891434], std: [1, 1, 1], scale: 1)

    /// Class names for a head with `count` outputs: the label protocol with that many classes
    /// (Cityscapes 19, SYNTHIA 16 or 13), else "class 0", "class 1", ...
    public static func classNames(count: Int) -> [String] {
        LabelProtocol.allCases.first { $0.count == count }?.classNames ?? (0..<count).map { "class \($0)" }
    }

    // MARK: loading

    /// Reads a DeepLabV2 checkpoint and builds the model it fits, in evaluation mode.
    ///
    /// Any file `Checkpoint.load` reads (`.pth`, zip or legacy, or safetensors); a training
    /// checkpoint's `state_dict` entry is used, and a DataParallel `module.` prefix removed.
    /// The number of classes comes from `layer6.conv2d_list.0.weight` [K, C, 3, 3] unless
    /// given; the backbone from the blocks present unless given.
    ///
    /// - Parameters:
    ///   - url: the checkpoint.
    ///   - backbone: the expected backbone; nil infers it from the names.
    ///   - numClasses: the expected number of classes; nil infers it.
    ///   - classifier: which head branches to sum (`published` for the published checkpoints).
    ///   - frozenBatchNorm: which BatchNorm layers to freeze.
    /// - Throws: `CheckpointError` for an unreadable file; `LoadError` naming the file when it
    ///   is not a DeepLabV2 checkpoint or does not fit the model (listing the missing,
    ///   unexpected and mismatching tensors with both shapes).
    public static func load(
        _ url: URL, backbone: ResNetDepth? = nil, numClasses: Int? = nil, classifier: ClassifierBranches = .published,
        frozenBatchNorm: FrozenBatchNorm = .stem
    ) throws -> DeepLabV2 {
        try load(
            Checkpoint.load(url), source: url.path, backbone: backbone, numClasses: numClasses, classifier: classifier,
            frozenBatchNorm: frozenBatchNorm)
    }

    /// Builds the model a state dict fits, as `load(_:backbone:numClasses:classifier:frozenBatchNorm:)`.
    ///
    /// - Parameter source: names the state dict in error messages (a path).
    public static func load(
        _ state: StateDict, source: String = "the state dict", backbone: ResNetDepth? = nil, numClasses: Int? = nil,
        classifier: ClassifierBranches = .published, frozenBatchNorm: FrozenBatchNorm = .stem
    ) throws -> DeepLabV2 {
        let state = state.removingDataParallelPrefix()
        let headName = "layer6.conv2d_list.0.weight"
        guard let head = state[headName], head.rank == 4 else {
            let names = state.names.prefix(8).joined(separator: ", ")
            throw LoadError(
                path: source,
                reason: "is not a DeepLabV2 (DeeplabMulti) checkpoint: it has no 4-d tensor `\(headName)` "
                    + "[numClasses, channels, 3, 3] (\(state.count) tensors; the first: \(names))",
                mismatch: nil)
        }
        guard let depth = backbone ?? inferBackbone(state) else {
            throw LoadError(
                path: source,
                reason:
                    "its ResNet blocks \(blockCounts(state)) (bottlenecks: \(state["layer1.0.conv3.weight"] != nil)) "
                    + "match none of \(ResNetDepth.allCases.map(\.description).joined(separator: ", ")); "
                    + "pass the backbone explicitly to see which tensors differ",
                mismatch: nil)
        }
        let configuration = Configuration(
            backbone: depth, numClasses: numClasses ?? head.shape[0], classifier: classifier,
            frozenBatchNorm: frozenBatchNorm)
        let model = try DeepLabV2(configuration, drawingWeights: false, generator: nil)
        do {
            try model.load(state)
        } catch let mismatch as StateDictMismatch {
            throw LoadError(
                path: source,
                reason: "does not fit DeepLabV2 (\(depth), \(configuration.numClasses) classes): \(mismatch)",
                mismatch: mismatch)
        }
        model.eval()
        return model
    }

    /// The backbone whose block kind and counts a (prefix-free) state dict has, if any.
    public static func inferBackbone(_ state: StateDict) -> ResNetDepth? {
        ResNetDepth(bottleneck: state["layer1.0.conv3.weight"] != nil, blockCounts: blockCounts(state))
    }

    /// Blocks per layer1 ... layer4: one more than the highest index `layerN.<i>.` names.
    private static func blockCounts(_ state: StateDict) -> [Int] {
        (1...4).map { layer in
            let prefix = "layer\(layer)."
            let indices = state.names.compactMap { name -> Int? in
                guard name.hasPrefix(prefix) else { return nil }
                return Int(name.dropFirst(prefix.count).prefix { $0 != "." })
            }
            return (indices.max() ?? -1) + 1
        }
    }
}

/// A DeepLabV2 classifier head, `Classifier_Module` of the published code: four 3x3
/// convolutions with bias from `inChannels` to `numClasses`, dilation = padding = 6, 12, 18,
/// 24, named `conv2d_list.0` ... `conv2d_list.3`, whose outputs are summed.
public final class DeepLabV2Classifier: Module, UnaryModule {
    /// Dilations (and paddings) of the branches.
    public static let dilations = [6, 12, 18, 24]

    public let branchConvolutions: [Conv2d]
    /// Which branches `forward` sums.
    public var branches: DeepLabV2.ClassifierBranches

    public init(inChannels: Int, numClasses: Int, branches: DeepLabV2.ClassifierBranches = .published) throws {
        branchConvolutions = try DeepLabV2Classifier.dilations.map {
            try Conv2d(inChannels, numClasses, kernelSize: 3, padding: Pair($0), dilation: Pair($0), bias: true)
        }
        self.branches = branches
        super.init()
        register("conv2d_list", ModuleList(branchConvolutions))
    }

    /// [N, inChannels, h, w] -> [N, numClasses, h, w]: the sum of the used branches.
    ///
    /// Computed as one matrix product instead of as dilated convolutions, which libtorch runs
    /// slowly with so few output channels. A branch with dilation d (padding d) is
    /// y[i, j] = b + sum over a, c in {-1, 0, 1} of W[a + 1, c + 1] x[i + a d, j + c d], with x
    /// zero outside the map. So the sum of the branches is the sum over the distinct offsets
    /// (dy, dx) that fall inside the map of V_(dy, dx) x shifted by (dy, dx), where V sums the
    /// branches' taps [numClasses, inChannels] at that offset (the centre taps of all
    /// branches share one). Z = [V_1; V_2; ...] X, X = x as [inChannels, N h w], is one matrix
    /// product; each block of Z is then added at its shift. Equal to the convolutions up to
    /// float rounding.
    public func forward(_ x: Tensor) throws -> Tensor {
        let used = branches == .published ? Array(branchConvolutions.prefix(2)) : branchConvolutions
        guard x.rank == 4, x.shape[1] == used[0].weight.value.shape[1] else {
            throw TorchError(
                "DeepLabV2Classifier expects features [N, \(used[0].weight.value.shape[1]), h, w], got \(x.shape)")
        }
        let (n, channels, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let classes = used[0].weight.value.shape[0]
        var offsets: [Pair] = []
        var taps: [Tensor] = []
        for conv in used {
            let d = conv.dilation
            for a in -1...1 {
                for c in -1...1 where Swift.abs(a * d.height) < h && Swift.abs(c * d.width) < w {
                    let offset = Pair(a * d.height, c * d.width)
                    let tap = try conv.weight.value.narrow(dim: 2, start: a + 1, length: 1)
                        .narrow(dim: 3, start: c + 1, length: 1).reshape([classes, channels])
                    if let k = offsets.firstIndex(of: offset) {
                        taps[k] = try taps[k] + tap
                    } else {
                        offsets.append(offset)
                        taps.append(tap)
                    }
                }
            }
        }
        // Classes first and the batch inside the columns: one plain product, forward and backward.
        let z = try Tensor.cat(taps, dim: 0).matmul(x.transpose(0, 1).reshape([channels, n * h * w]))
            .reshape([offsets.count, classes, n, h, w])
        var bias = try Tensor.zeros([classes], dtype: x.dtype, device: x.device)
        for conv in used { if let b = conv.bias { bias = try bias + b.value } }
        let out =
            try Tensor.zeros([classes, n, h, w], dtype: x.dtype, device: x.device)
            + bias.reshape([classes, 1, 1, 1])
        for (k, offset) in offsets.enumerated() {
            // out[i, j] += Z_k[i + dy, j + dx] where both positions are inside the map.
            let (rows, columns) = (h - Swift.abs(offset.height), w - Swift.abs(offset.width))
            let shifted = try z.narrow(dim: 0, start: k, length: 1).reshape([classes, n, h, w])
                .narrow(dim: 2, start: Swift.max(offset.height, 0), length: rows)
                .narrow(dim: 3, start: Swift.max(offset.width, 0), length: columns)
            try out.narrow(dim: 2, start: Swift.max(-offset.height, 0), length: rows)
                .narrow(dim: 3, start: Swift.max(-offset.width, 0), length: columns).add_(shifted)
        }
        return try out.transpose(0, 1).contiguous()
    }
}

/// Children named "0", "1", ... without a forward of their own, `torch.nn.ModuleList`.
private final class ModuleList: Module {
    init(_ modules: [Module]) {
        super.init()
        for (index, module) in modules.enumerated() { register(String(index), module) }
    }
}

/// `--model deeplabv2`: the published DeeplabMulti state dicts and SegTTT's safetensors.
public struct DeepLabV2Family: ModelFamily {
    public init() {}
    public var name: String { "deeplabv2" }
    public var summary: String { "DeepLabV2 (DeeplabMulti) on a ResNet; the depth comes from the checkpoint" }

    public func load(_ url: URL, cardFile: URL?) throws -> any SegmentationModel {
        try refuseCardFile(cardFile)
        do {
            return try DeepLabV2.load(url)
        } catch let error as DeepLabV2.LoadError where error.mismatch == nil {
            throw CheckpointError(path: url.path, reason: error.reason + "; check --model")
        }
    }

    /// Reads "backbone" (the ResNet's depth: 18, 34, 50 or 101; 101 when absent).
    public func fresh(classNames: [String], architecture: [String: Int], generator: Generator) throws
        -> (any SegmentationModel)?
    {
        let depth = architecture["backbone"] ?? 101
        guard let backbone = ResNetDepth(rawValue: depth) else {
            throw TorchError("a DeepLabV2 backbone of depth \(depth): use 18, 34, 50 or 101")
        }
        return try DeepLabV2(.init(backbone: backbone, numClasses: classNames.count), generator: generator)
    }
}
