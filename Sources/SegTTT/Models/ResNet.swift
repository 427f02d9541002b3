// Caffe-style dilated ResNet blocks, the backbone of DeepLabV2.
//
// He et al., "Deep Residual Learning for Image Recognition", CVPR 2016; the dilated
// (atrous) variant with output stride 8 after Chen et al., "DeepLab: Semantic Image
// Segmentation with Deep Convolutional Nets, Atrous Convolution, and Fully Connected CRFs",
// TPAMI 2017. "Caffe-style" means the stride of a block sits on its first convolution (the
// 1x1 of a bottleneck), not on the 3x3 as in torchvision; the published DeepLabV2 weights
// were converted from Caffe and need this placement.
import Torch
import TorchNN

/// A ResNet depth: its block kind and its number of blocks in layer1 ... layer4.
public enum ResNetDepth: Int, CaseIterable, Sendable, Codable, CustomStringConvertible {
    /// Basic blocks [2, 2, 2, 2]; layer3 and layer4 give 256 and 512 channels.
    case resnet18 = 18
    /// Basic blocks [3, 4, 6, 3]; 256 and 512 channels.
    case resnet34 = 34
    /// Bottlenecks [3, 4, 6, 3]; 1024 and 2048 channels.
    case resnet50 = 50
    /// Bottlenecks [3, 4, 23, 3]; 1024 and 2048 channels. The published DeepLabV2's.
    case resnet101 = 101

    /// Number of blocks in layer1, layer2, layer3, layer4.
    public var blockCounts: [Int] {
        switch self {
        case .resnet18: return [2, 2, 2, 2]
        case .resnet34, .resnet50: return [3, 4, 6, 3]
        case .resnet101: return [3, 4, 23, 3]
        }
    }

    /// Whether the blocks are bottlenecks (1x1, 3x3, 1x1) rather than basic blocks (3x3, 3x3).
    public var usesBottleneck: Bool { self == .resnet50 || self == .resnet101 }

    /// Output channels of a block per "planes" of its layer: 4 for bottlenecks, 1 for basic blocks.
    public var expansion: Int { usesBottleneck ? 4 : 1 }

    /// Channels out of layer3 (the auxiliary head's input) and layer4 (the main head's input).
    public var featureChannels: (layer3: Int, layer4: Int) { (256 * expansion, 512 * expansion) }

    /// The depth whose block kind and counts these are, if any.
    public init?(bottleneck: Bool, blockCounts: [Int]) {
        guard
            let depth = ResNetDepth.allCases.first(where: {
                $0.usesBottleneck == bottleneck && $0.blockCounts == blockCounts
            })
        else { return nil }
        self = depth
    }

    public var description: String { "resnet\(rawValue)" }
}

/// Which BatchNorm layers keep their affine parameters (weight, bias) frozen, as the published
/// training code set `requires_grad = False`. Running statistics are buffers and never trainable.
public enum FrozenBatchNorm: String, CaseIterable, Sendable, Codable {
    /// Only the stem's `bn1`: MaxSquare's `graphs/models/deeplab_multi.py`, which the OCL code
    /// imports, freezes this one alone; every other BatchNorm stays trainable.
    case stem
    /// Every BatchNorm (stem, `bn1`...`bn3` of each block, `downsample.1`): AdaptSegNet's
    /// `model/deeplab_multi.py` (which MaxSquare's derives from) freezes them all.
    case all
}

/// A residual block of a Caffe-style ResNet: maps [N, Cin, H, W] to [N, Cout, H', W'].
public protocol ResidualBlock: UnaryModule {
    /// The block's BatchNorm layers, shortcut included, in state-dict order.
    var batchNorms: [BatchNorm2d] { get }
}

/// The shortcut projection `downsample`: a 1x1 conv (stride s, no bias) then BatchNorm,
/// named `downsample.0` and `downsample.1`.
func makeDownsample(_ inChannels: Int, _ outChannels: Int, stride: Int) throws -> Sequential {
    Sequential(
        try Conv2d(inChannels, outChannels, kernelSize: 1, stride: Pair(stride), bias: false),
        try BatchNorm2d(outChannels, eps: 1e-5))
}

/// The bottleneck block, `Bottleneck` of the published code (expansion 4):
/// `relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x))`, where conv1 is
/// 1x1 with the block's stride, conv2 is 3x3 with dilation d and padding d, conv3 is 1x1 to
/// 4 * planes channels, and the shortcut is `downsample` when present, else the identity.
public final class Bottleneck: Module, ResidualBlock {
    public static let expansion = 4

    public let conv1: Conv2d
    public let bn1: BatchNorm2d
    public let conv2: Conv2d
    public let bn2: BatchNorm2d
    public let conv3: Conv2d
    public let bn3: BatchNorm2d
    public let downsample: Sequential?

    /// - Parameters:
    ///   - inChannels: channels of the input.
    ///   - planes: channels inside the block; the output has 4 * planes.
    ///   - stride: stride of the first 1x1 convolution (and of the shortcut).
    ///   - dilation: dilation (and padding) of the 3x3 convolution.
    ///   - downsample: the shortcut projection, nil for the identity.
    public init(inChannels: Int, planes: Int, stride: Int = 1, dilation: Int = 1, downsample: Sequential? = nil) throws
    {
        conv1 = try Conv2d(inChannels, planes, kernelSize: 1, stride: Pair(stride), bias: false)
        bn1 = try BatchNorm2d(planes, eps: 1e-5)
        conv2 = try Conv2d(
            planes, planes, kernelSize: 3, padding: Pair(dilation), dilation: Pair(dilation), bias: false)
        bn2 = try BatchNorm2d(planes, eps: 1e-5)
        conv3 = try Conv2d(planes, planes * Bottleneck.expansion, kernelSize: 1, bias: false)
        bn3 = try BatchNorm2d(planes * Bottleneck.expansion, eps: 1e-5)
        self.downsample = downsample
        super.init()
        // PyTorch's attribute order: the shortcut, assigned last, comes last in the state dict.
        register("conv1", conv1)
        register("bn1", bn1)
        register("conv2", conv2)
        register("bn2", bn2)
        register("conv3", conv3)
        register("bn3", bn3)
        if let downsample { register("downsample", downsample) }
    }

    public func forward(_ x: Tensor) throws -> Tensor {
        // In place, as torchvision's ReLU(inplace=True): no batch norm keeps its output.
        var y = try bn1(conv1(x)).relu_()
        y = try bn2(conv2(y)).relu_()
        y = try bn3(conv3(y))
        try y.add_(downsample?(x) ?? x)
        return try y.relu_()
    }

    public var batchNorms: [BatchNorm2d] {
        [bn1, bn2, bn3] + (downsample?.layers.compactMap { $0 as? BatchNorm2d } ?? [])
    }
}

/// The basic block (expansion 1), for the ResNet-18/34 backbones:
/// `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`, both convolutions 3x3 with
/// dilation d and padding d, the stride on conv1 (as in the bottleneck: Caffe-style).
public final class BasicBlock: Module, ResidualBlock {
    public static let expansion = 1

    public let conv1: Conv2d
    public let bn1: BatchNorm2d
    public let conv2: Conv2d
    public let bn2: BatchNorm2d
    public let downsample: Sequential?

    /// - Parameters:
    ///   - inChannels: channels of the input.
    ///   - planes: channels inside and out of the block.
    ///   - stride: stride of the first convolution (and of the shortcut).
    ///   - dilation: dilation (and padding) of both convolutions.
    ///   - downsample: the shortcut projection, nil for the identity.
    public init(inChannels: Int, planes: Int, stride: Int = 1, dilation: Int = 1, downsample: Sequential? = nil) throws
    {
        conv1 = try Conv2d(
            inChannels, planes, kernelSize: 3, stride: Pair(stride), padding: Pair(dilation),
            dilation: Pair(dilation), bias: false)
        bn1 = try BatchNorm2d(planes, eps: 1e-5)
        conv2 = try Conv2d(
            planes, planes, kernelSize: 3, padding: Pair(dilation), dilation: Pair(dilation), bias: false)
        bn2 = try BatchNorm2d(planes, eps: 1e-5)
        self.downsample = downsample
        super.init()
        register("conv1", conv1)
        register("bn1", bn1)
        register("conv2", conv2)
        register("bn2", bn2)
        if let downsample { register("downsample", downsample) }
    }

    public func forward(_ x: Tensor) throws -> Tensor {
        let y = try bn2(conv2(bn1(conv1(x)).relu()))
        let shortcut = try downsample?(x) ?? x
        return try (y + shortcut).relu()
    }

    public var batchNorms: [BatchNorm2d] {
        [bn1, bn2] + (downsample?.layers.compactMap { $0 as? BatchNorm2d } ?? [])
    }
}

/// One stage `layerN` of the backbone: `count` blocks named "0", "1", ...
///
/// The first block takes the stage's stride and, when the stride is not 1, the channel count
/// changes, or the dilation is 2 or 4 (the published rule, kept even where it adds a
/// projection the shapes do not need), a `downsample` shortcut.
///
/// - Parameters:
///   - depth: picks the block kind.
///   - inChannels: channels into the stage.
///   - planes: 64, 128, 256 or 512.
///   - count: number of blocks.
///   - stride: stride of the first block.
///   - dilation: dilation of every block.
/// - Returns: the stage and its output channels.
func makeResNetLayer(
    depth: ResNetDepth, inChannels: Int, planes: Int, count: Int, stride: Int, dilation: Int
) throws -> (layer: Sequential, outChannels: Int) {
    let out = planes * depth.expansion
    let needsProjection = stride != 1 || inChannels != out || dilation == 2 || dilation == 4
    let downsample = needsProjection ? try makeDownsample(inChannels, out, stride: stride) : nil
    var blocks: [any UnaryModule] = []
    for index in 0..<count {
        let (cin, s, shortcut) = index == 0 ? (inChannels, stride, downsample) : (out, 1, nil)
        if depth.usesBottleneck {
            blocks.append(
                try Bottleneck(inChannels: cin, planes: planes, stride: s, dilation: dilation, downsample: shortcut))
        } else {
            blocks.append(
                try BasicBlock(inChannels: cin, planes: planes, stride: s, dilation: dilation, downsample: shortcut))
        }
    }
    return (Sequential(blocks), out)
}
