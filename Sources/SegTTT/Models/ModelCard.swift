import Torch

/// How a model expects its input image: y = (x - mean) / std * scale per channel, where x is
/// the image in `channelOrder` with values in 0...255.
public struct InputNormalization: Equatable, Sendable, Codable {
    public enum ChannelOrder: String, Sendable, Codable { case rgb, bgr }

    public var channelOrder: ChannelOrder
    /// Per-channel mean, in `channelOrder`, on the 0...255 scale.
    public var mean: [Double]
    /// Per-channel standard deviation, in `channelOrder`, on the 0...255 scale.
    public var std: [Double]
    /// Multiplier applied after the standardisation (1/255 for ESPNet, 1 for DeepLab).
    public var scale: Double

    public init(channelOrder: ChannelOrder, mean: [Double], std: [Double] = [1, 1, 1], scale: Double = 1) {
        self.channelOrder = channelOrder
        self.mean = mean
        self.std = std
        self.scale = scale
    }

    /// A uint8 (or float 0...255) RGB image [3, H, W] or batch [N, 3, H, W] as the float32
    /// network input [N, 3, H, W].
    public func apply(_ image: Tensor) throws -> Tensor {
        var x = try image.to(.float32)
        if x.rank == 3 { x = try x.unsqueeze(dim: 0) }
        guard x.rank == 4, x.shape[1] == 3 else {
            throw TorchError("expected an RGB image [3, H, W] or [N, 3, H, W], got \(image.shape)")
        }
        if channelOrder == .bgr { x = try x.flip([1]) }
        let m = try Tensor(mean.map(Float.init), shape: [1, 3, 1, 1])
        let s = try Tensor(std.map { Float(scale) / Float($0) }, shape: [1, 3, 1, 1])
        return try (x - m) * s
    }
}

/// What a user needs to know to feed a model and read its outputs: class names, number of
/// outputs, input normalisation, the checkpoint formats it accepts.
public struct ModelCard: Equatable, Sendable, Codable {
    /// Family and variant, e.g. "espnet (p = 2, q = 8)".
    public var name: String
    /// The task's classes, in output order; outputs beyond them (a background or void output)
    /// are not classes of the task.
    public var classNames: [String]
    /// Number of output channels of the logits (>= classNames.count).
    public var numOutputs: Int
    public var normalization: InputNormalization
    /// The checkpoint formats it loads, in words.
    public var checkpointFormats: [String]

    public init(
        name: String, classNames: [String], numOutputs: Int, normalization: InputNormalization,
        checkpointFormats: [String] = ["PyTorch .pth (legacy or zip)", "safetensors"]
    ) {
        self.name = name
        self.classNames = classNames
        self.numOutputs = numOutputs
        self.normalization = normalization
        self.checkpointFormats = checkpointFormats
    }
}
