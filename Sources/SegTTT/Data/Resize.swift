import Torch

/// Resizing of images and labels to a model's input size, with the rule each needs:
/// images are interpolated, labels take the nearest pixel's class so that no value appears
/// that was not in the label (interpolating between class 3 and class 5 would invent 4).
///
/// Both go through `interpolate` (PyTorch's `F.interpolate`), without antialiasing, with
/// `align_corners = False` as torchvision does.
public enum Resize {
    /// How image pixels between input samples are computed.
    public enum Filter: Sendable, Equatable {
        /// Linear in x and y from the 2 x 2 nearest pixels.
        case bilinear
        /// Keys' cubic (a = -0.75) from the 4 x 4 nearest pixels; sharper, may overshoot (clamped).
        case bicubic
    }

    /// An image [C, H, W] (or a batch [N, C, H, W]) of uint8 resized to `size` (height,
    /// width), still uint8.
    ///
    /// Interpolates in float32, then rounds half up (floor(x + 0.5); torch.round would round
    /// exact halves to even) and clamps to 0...255. Returned unchanged when already that size.
    public static func image(_ image: Tensor, to size: Pair, filter: Filter = .bilinear) throws -> Tensor {
        guard image.dtype == .uint8, image.rank == 3 || image.rank == 4 else {
            throw TorchError(
                "Resize.image expects a uint8 image [C, H, W] or [N, C, H, W], got \(image.dtype) \(image.shape); "
                    + "use Resize.label for labels")
        }
        try checkSize(size)
        let shape = image.shape
        if shape[shape.count - 2] == size.height && shape[shape.count - 1] == size.width { return image }
        let batch = image.rank == 4 ? image : try image.unsqueeze(dim: 0)  // [N, C, H, W]
        let mode: InterpolationMode =
            filter == .bilinear ? .bilinear(alignCorners: false) : .bicubic(alignCorners: false)
        let resized = try interpolate(batch.to(.float32), size: size, mode: mode)
        let rounded = try (resized + 0.5).floor().clamp(min: 0, max: 255).to(.uint8)
        return image.rank == 4 ? rounded : try rounded.squeeze(dim: 0)
    }

    /// A label [H, W] (or [N, H, W]) of integers resized to `size` (height, width) by nearest
    /// neighbour, same dtype: every output value is an input value (including `ignoreLabel`).
    ///
    /// Nearest is PyTorch's legacy rule: source index = floor(out * inSize / outSize).
    public static func label(_ label: Tensor, to size: Pair) throws -> Tensor {
        guard !label.dtype.isFloatingPoint, label.dtype != .bool, label.rank == 2 || label.rank == 3 else {
            throw TorchError(
                "Resize.label expects an integer label [H, W] or [N, H, W], got \(label.dtype) \(label.shape); "
                    + "use Resize.image for images")
        }
        try checkSize(size)
        let shape = label.shape
        if shape[shape.count - 2] == size.height && shape[shape.count - 1] == size.width { return label }
        // [N, 1, H, W]; float64 holds every integer label value exactly, and nearest only copies.
        let batch = try (label.rank == 3 ? label : label.unsqueeze(dim: 0)).unsqueeze(dim: 1)
        let resized = try interpolate(batch.to(.float64), size: size, mode: .nearest).to(label.dtype)
        let squeezed = try resized.squeeze(dim: 1)
        return label.rank == 3 ? squeezed : try squeezed.squeeze(dim: 0)
    }

    private static func checkSize(_ size: Pair) throws {
        guard size.height > 0, size.width > 0 else {
            throw TorchError("cannot resize to \(size): height and width must be positive")
        }
    }
}
