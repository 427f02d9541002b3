import Torch

/// Pictures of class maps: predictions or labels painted in class colours, blended over the
/// input image, and images set side by side. All work is done on whole tensors; results are
/// RGB uint8 `[3, H, W]`, as `ImageIO.writePNG` takes them.
public enum PredictionImage {
    /// Paints a class map: pixel (y, x) takes `palette[labels[y, x]]`.
    ///
    /// - Parameters:
    ///   - labels: an integer tensor `[H, W]` of class indices. Values outside
    ///     `0..<palette.count` (the ignore value 255, the index a class mapping gives to
    ///     unmapped classes, negative values) are painted black (`ClassPalette.unlabelled`).
    ///   - palette: one RGB triple per class, e.g. `ClassPalette.colours(for:)`.
    /// - Returns: `[3, H, W]` uint8 on the labels' device.
    public static func colourize(_ labels: Tensor, palette: [[UInt8]]) throws -> Tensor {
        guard labels.rank == 2 else {
            throw TorchError("a class map to colourize must be [H, W], got shape \(labels.shape)")
        }
        guard !labels.dtype.isFloatingPoint, labels.dtype != .bool else {
            throw TorchError("a class map to colourize must hold integer class indices, got \(labels.dtype)")
        }
        if let entry = palette.firstIndex(where: { $0.count != 3 }) {
            throw TorchError("palette entry \(entry) has \(palette[entry].count) components instead of 3 (RGB)")
        }
        // Row palette.count of the lookup table is the colour of every value without a class.
        let classes = palette.count
        let table = try Tensor((palette + [ClassPalette.unlabelled]).flatMap { $0 }, shape: [classes + 1, 3])
            .to(device: labels.device)
        let indices = try labels.to(.int64)
        let hasClass = try indices.ge(0).logicalAnd(indices.lt(Double(classes)))
        let noClass = try Tensor(scalar: Int64(classes)).to(device: labels.device)
        let rows = try Tensor.where(hasClass, indices, noClass).reshape([-1])
        let (height, width) = (labels.shape[0], labels.shape[1])
        return try table.indexSelect(dim: 0, index: rows).reshape([height, width, 3]).permute([2, 0, 1])
            .contiguous()
    }

    /// Blends class colours over an image: round((1 - alpha) * image + alpha * colours) per
    /// channel value, halves rounded up.
    ///
    /// - Parameters:
    ///   - image: RGB uint8 `[3, H, W]`.
    ///   - colours: RGB uint8 of the same shape, e.g. from `colourize(_:palette:)`.
    ///   - alpha: the colours' weight, in 0...1 (0 gives the image, 1 the colours).
    /// - Returns: `[3, H, W]` uint8.
    public static func overlay(_ image: Tensor, colours: Tensor, alpha: Double = 0.5) throws -> Tensor {
        try checkRGB(image, role: "image to overlay")
        try checkRGB(colours, role: "overlay colours")
        guard image.shape == colours.shape else {
            throw TorchError(
                "the overlay colours \(colours.shape) and the image \(image.shape) differ in shape;"
                    + " colourize a class map of the image's size (resize the prediction first)")
        }
        guard (0...1).contains(alpha) else { throw TorchError("overlay alpha must lie in 0...1, got \(alpha)") }
        let blend = try image.to(.float64) * (1 - alpha) + colours.to(.float64) * alpha
        return try (blend + 0.5).floor().clamp(min: 0, max: 255).to(.uint8)
    }

    /// Images set left to right in the given order, e.g. image, prediction and label.
    ///
    /// - Parameter images: RGB uint8 `[3, H, W]` tensors of one height (widths may differ).
    /// - Returns: `[3, H, W1 + W2 + ...]` uint8.
    public static func side(_ images: [Tensor]) throws -> Tensor {
        guard let first = images.first else { throw TorchError("no images to set side by side") }
        for (position, image) in images.enumerated() {
            try checkRGB(image, role: "image \(position) to set side by side")
            guard image.shape[1] == first.shape[1] else {
                throw TorchError(
                    "images set side by side must have one height: image 0 is \(first.shape[1]) pixels high,"
                        + " image \(position) \(image.shape[1])")
            }
        }
        return try Tensor.cat(images, dim: 2)
    }

    /// Throws unless `tensor` is RGB uint8 `[3, H, W]`; `role` names it in the message.
    static func checkRGB(_ tensor: Tensor, role: String) throws {
        guard tensor.rank == 3, tensor.shape[0] == 3, tensor.dtype == .uint8 else {
            throw TorchError("the \(role) must be RGB uint8 [3, H, W], got \(tensor.dtype) \(tensor.shape)")
        }
    }
}
