// Common image corruptions at five severities, for robustness and continual test-time
// adaptation streams.
//
// D. Hendrycks and T. Dietterich, "Benchmarking Neural Network Robustness to Common
// Corruptions and Perturbations", ICLR 2019 (ImageNet-C; code: hendrycks/robustness,
// `make_imagenet_c.py`). The severity constants below are that code's; for images of any
// size (Cityscapes-C) fog follows the `imagecorruptions` package of C. Michaelis et al.,
// "Benchmarking Robustness in Object Detection" (2019), which sizes the plasma fractal to
// the next power of two of the longer side. "night" is this project's own corruption (no
// published constants).
//
// Every corruption maps an RGB image [3, H, W] uint8 to x = image / 255 in [0, 1] (float),
// computes y, and returns round(clamp(y, 0, 1) * 255) as uint8. Random draws come from a
// `Generator` seeded from (seed, frame index) only, so a frame's corruption is the same
// bit for bit whatever was drawn before it.
import Foundation
import Torch

/// The kinds of corruption, named as in ImageNet-C (`gaussian_noise`, ...).
public enum CorruptionKind: String, CaseIterable, Sendable {
    case gaussianNoise = "gaussian_noise"
    case shotNoise = "shot_noise"
    case impulseNoise = "impulse_noise"
    case defocusBlur = "defocus_blur"
    case brightness
    case contrast
    case fog
    case night
    case jpegCompression = "jpeg_compression"

    /// The valid names, comma-separated, for error messages and help text.
    public static var validNames: String { allCases.map(\.rawValue).joined(separator: ", ") }

    /// The constants of `severity` (1 ... 5).
    public func parameters(severity: Int) throws -> CorruptionParameters {
        guard Corruption.severities.contains(severity) else {
            throw CorruptionError.invalidSeverity(kind: rawValue, severity: severity)
        }
        return constants(level: severity - 1)
    }

    /// The constants at 0-based `level` (severity - 1), which must lie in 0 ..< 5.
    func constants(level i: Int) -> CorruptionParameters {
        switch self {
        case .gaussianNoise: return .gaussianNoise(std: [0.08, 0.12, 0.18, 0.26, 0.38][i])
        case .shotNoise: return .shotNoise(photonsPerUnit: [60, 25, 12, 5, 3][i])
        case .impulseNoise: return .impulseNoise(amount: [0.03, 0.06, 0.09, 0.17, 0.27][i])
        case .defocusBlur:
            let c: [(Double, Double)] = [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)]
            return .defocusBlur(radius: c[i].0, aliasBlur: c[i].1)
        case .brightness: return .brightness(shift: [0.1, 0.2, 0.3, 0.4, 0.5][i])
        case .contrast: return .contrast(factor: [0.4, 0.3, 0.2, 0.1, 0.05][i])
        case .fog:
            let c: [(Double, Double)] = [(1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)]
            return .fog(thickness: c[i].0, wibbleDecay: c[i].1)
        case .night:
            return .night(
                gamma: [1.5, 2.0, 2.5, 3.0, 3.5][i], gain: [0.8, 0.65, 0.5, 0.4, 0.3][i],
                noiseStd: [0.01, 0.015, 0.02, 0.025, 0.03][i])
        case .jpegCompression: return .jpegCompression(quality: [25, 18, 15, 10, 7][i])
        }
    }
}

/// The constants of one corruption at one severity; each case states its maths, with
/// x = image / 255 in [0, 1].
public enum CorruptionParameters: Equatable, Sendable {
    /// y = x + n, n ~ N(0, std^2) per pixel and channel.
    case gaussianNoise(std: Double)
    /// y = k / c with k ~ Poisson(c * x) per pixel and channel, c = `photonsPerUnit`,
    /// drawn exactly by inverting the Poisson CDF (libtorch's `poisson` is not exposed).
    case shotNoise(photonsPerUnit: Double)
    /// Salt and pepper per pixel and channel: with probability `amount` the value is
    /// replaced, by 1 or 0 with equal chance (skimage `random_noise(mode="s&p")`).
    case impulseNoise(amount: Double)
    /// y = x (*) K per channel, K the disk {u^2 + v^2 <= r^2} normalised to sum 1 and
    /// smoothed by a Gaussian of std `aliasBlur` (3x3, or 5x5 when r > 8); borders
    /// reflected without repeating the edge (OpenCV's BORDER_REFLECT_101).
    case defocusBlur(radius: Double, aliasBlur: Double)
    /// HSV value channel V = max(r, g, b) raised: V' = min(V + shift, 1), hue and
    /// saturation kept, so y = x * V' / V (and y = V' for black pixels).
    case brightness(shift: Double)
    /// y = (x - m) * factor + m, m the per-channel mean over the image.
    case contrast(factor: Double)
    /// y = (x + t * F) * M / (M + t), F a diamond-square plasma fractal in [0, 1] whose
    /// roughness decays by `wibbleDecay` per octave, t = `thickness`, M = max(x).
    case fog(thickness: Double, wibbleDecay: Double)
    /// Darkening (this project's, not ImageNet-C's): y = gain * x^gamma + n,
    /// n ~ N(0, noiseStd^2) per pixel and channel (sensor noise of a dark exposure).
    case night(gamma: Double, gain: Double, noiseStd: Double)
    /// A JPEG round trip at libjpeg `quality` (4:2:0 chroma subsampling).
    case jpegCompression(quality: Int)
}

/// A mistake in naming or applying a corruption.
public enum CorruptionError: Error, CustomStringConvertible, Equatable {
    case unknownName(String)
    case invalidSeverity(kind: String, severity: Int)
    case malformed(String, expected: String)
    case invalidImage(shape: [Int], dtype: String)
    case invalidSchedule(String)

    public var description: String {
        switch self {
        case .unknownName(let name):
            return "unknown corruption '\(name)'; valid names: \(CorruptionKind.validNames) (write NAME:SEVERITY, "
                + "e.g. gaussian_noise:3)"
        case .invalidSeverity(let kind, let severity):
            return "corruption \(kind) has no severity \(severity); severities are 1 ... 5"
        case .malformed(let text, let expected):
            return "cannot read '\(text)' as a corruption; expected \(expected)"
        case .invalidImage(let shape, let dtype):
            return "corruptions take an RGB image [3, H, W] uint8, got \(shape) \(dtype); "
                + "read images with ImageIO.readImage"
        case .invalidSchedule(let problem):
            return "invalid corruption schedule: \(problem); write segments as NAME:SEVERITY@FRAMES or "
                + "clean@FRAMES, comma-separated, e.g. fog:3@100,clean@50,night:5@100"
        }
    }
}

/// One corruption at one severity, e.g. `gaussian_noise:3`.
public struct Corruption: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The severities every corruption has.
    public static let severities = 1...5

    public let kind: CorruptionKind
    public let severity: Int

    /// - Throws: `CorruptionError.invalidSeverity` unless 1 <= severity <= 5.
    public init(_ kind: CorruptionKind, severity: Int) throws {
        guard Corruption.severities.contains(severity) else {
            throw CorruptionError.invalidSeverity(kind: kind.rawValue, severity: severity)
        }
        self.kind = kind
        self.severity = severity
    }

    /// Parses `NAME:SEVERITY`, e.g. "gaussian_noise:3" (names case-insensitive, '-' read
    /// as '_').
    public init(parsing text: String) throws {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            if parts.count == 1, CorruptionKind(rawValue: Corruption.normalizedName(parts[0])) == nil {
                throw CorruptionError.unknownName(String(parts[0]))
            }
            throw CorruptionError.malformed(text, expected: "NAME:SEVERITY, e.g. gaussian_noise:3")
        }
        let name = Corruption.normalizedName(parts[0])
        guard let kind = CorruptionKind(rawValue: name) else { throw CorruptionError.unknownName(String(parts[0])) }
        guard let severity = Int(parts[1].trimmingCharacters(in: .whitespaces)) else {
            throw CorruptionError.malformed(text, expected: "an integer severity 1 ... 5 after ':', e.g. \(name):3")
        }
        try self.init(kind, severity: severity)
    }

    static func normalizedName<S: StringProtocol>(_ name: S) -> String {
        name.trimmingCharacters(in: .whitespaces).lowercased().replacingOccurrences(of: "-", with: "_")
    }

    /// "gaussian_noise:3"
    public var description: String { "\(kind.rawValue):\(severity)" }

    /// The constants of this corruption.
    public var parameters: CorruptionParameters {
        // The initialisers admit only severities 1 ... 5.
        kind.constants(level: severity - 1)
    }

    /// The generator seed of frame `frameIndex` under `seed`: SplitMix64 of both, so that
    /// neighbouring frames and seeds give unrelated streams.
    public static func generatorSeed(frameIndex: Int, seed: UInt64) -> UInt64 {
        splitMix64(seed ^ splitMix64(UInt64(bitPattern: Int64(frameIndex)) &+ 0x5EC7_7770))
    }

    /// The corrupted image.
    ///
    /// - Parameters:
    ///   - image: RGB [3, H, W] uint8, on any device.
    ///   - frameIndex: the frame's position in the stream (seeds the random draws).
    ///   - seed: the run's seed.
    /// - Returns: [3, H, W] uint8 on the image's device; the same bits for the same
    ///   (image, frameIndex, seed).
    public func apply(image: Tensor, frameIndex: Int, seed: UInt64) throws -> Tensor {
        let shape = image.shape
        guard shape.count == 3, shape[0] == 3, image.dtype == .uint8 else {
            throw CorruptionError.invalidImage(shape: shape, dtype: image.dtype.description)
        }
        let generator = try Generator(seed: Corruption.generatorSeed(frameIndex: frameIndex, seed: seed))
        let device = image.device
        // Noise is drawn on the CPU (as the generator is) and moved to the image.
        func draw(_ make: () throws -> Tensor) throws -> Tensor { try make().to(device: device) }
        let x = try image.to(.float32) / 255  // [3, H, W] in [0, 1]

        let y: Tensor
        switch parameters {
        case .gaussianNoise(let std):
            y = try x + draw { try Tensor.normal(shape, std: std, generator: generator) }
        case .shotNoise(let c):
            let counts = try poissonCounts(levels: image.to(.int64), photonsPerUnit: c, generator: generator)
            y = try counts.to(device: device) / c
        case .impulseNoise(let amount):
            let flipped = try draw { try Tensor.uniform(shape, generator: generator) }.lt(amount)
            let salt = try draw { try Tensor.uniform(shape, generator: generator) }.lt(0.5).to(.float32)
            y = try Tensor.where(flipped, salt, x)
        case .defocusBlur(let radius, let aliasBlur):
            y = try defocus(x, radius: radius, aliasBlur: aliasBlur)
        case .brightness(let shift):
            let v = try x.amax(dims: [0], keepDim: true)  // [1, H, W]
            let raised = try (v + shift).clamp(max: 1)
            let scaled = try x * (raised / v.clamp(min: 1e-12))
            y = try Tensor.where(v.gt(0), scaled, raised.expand(shape))
        case .contrast(let factor):
            let means = try x.mean(dims: [1, 2], keepDim: true)  // [3, 1, 1]
            y = try (x - means) * factor + means
        case .fog(let thickness, let wibbleDecay):
            let maxValue = try x.amax().item()
            let side = Corruption.nextPowerOfTwo(Swift.max(shape[1], shape[2]))
            let plasma = try plasmaFractal(mapSize: side, wibbleDecay: wibbleDecay, generator: generator)
                .narrow(dim: 0, start: 0, length: shape[1]).narrow(dim: 1, start: 0, length: shape[2])
                .to(.float32).to(device: device).unsqueeze(dim: 0)  // [1, H, W]
            y = try (x + plasma * thickness) * (maxValue / (maxValue + thickness))
        case .night(let gamma, let gain, let noiseStd):
            y = try x.pow(gamma) * gain + draw { try Tensor.normal(shape, std: noiseStd, generator: generator) }
        case .jpegCompression(let quality):
            let data = try ImageIO.encodeJPEG(image.to(device: .cpu), quality: quality)
            return try ImageIO.decodeImage(data, name: "\(description) frame \(frameIndex)").to(device: device)
        }
        return try Corruption.toUInt8(y)
    }

    /// round(clamp(y, 0, 1) * 255) as uint8 (halves rounded up).
    static func toUInt8(_ y: Tensor) throws -> Tensor {
        try (y.clamp(min: 0, max: 1) * 255 + 0.5).floor().to(.uint8)
    }

    static func nextPowerOfTwo(_ n: Int) -> Int {
        var p = 1
        while p < n { p *= 2 }
        return p
    }

    static func splitMix64(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// MARK: - The random fields and kernels

/// Poisson counts k ~ Poisson(c * level / 255) for uint8 levels (int64, any shape, values
/// 0...255), c = `photonsPerUnit`; float32 on the CPU.
///
/// libtorch's `poisson` is not exposed by the shim, so counts are drawn here, exactly, by
/// inverting the CDF: k = #{j : F(j) <= u}, u ~ U[0, 1), F the CDF of Poisson(lambda). As a
/// level takes only 256 values, F is tabulated once per call for every level at
/// j = 0 ..< K (K a power of two past lambda_max + 12 sqrt(lambda_max) + 20, F(K - 1) set to
/// 1), and k is found for all pixels at once by binary lifting over the table: log2(K)
/// rounds of one `index_select` and one comparison. u and F are float32, so outcomes rarer
/// than about 6e-8 (2^-24) are not drawn; otherwise the counts follow the Poisson law exactly.
func poissonCounts(levels: Tensor, photonsPerUnit c: Double, generator: Generator) throws -> Tensor {
    let levels = try levels.to(.int64, device: .cpu)
    let u = try Tensor.uniform(levels.shape, generator: generator)  // float32 in [0, 1)
    var size = 1
    while Double(size) < c + 12 * c.squareRoot() + 20 { size *= 2 }
    // cdf[level * size + j] = P(K <= j | lambda = c * level / 255), from log-probabilities.
    var cdf = [Float](repeating: 1, count: 256 * size)
    for level in 0..<256 {
        let lambda = c * Double(level) / 255
        var total = 0.0
        for j in 0..<(size - 1) {
            if lambda > 0 {
                total += Foundation.exp(-lambda + Double(j) * Foundation.log(lambda) - Foundation.lgamma(Double(j + 1)))
            } else {
                total = 1  // Poisson(0) is always 0
            }
            cdf[level * size + j] = Float(Swift.min(total, 1))
        }
    }
    let table = try Tensor(cdf)
    // int64 throughout: scalars as 0-d int64 tensors (a Double scalar would promote to float).
    let rowStart = try levels * Tensor(scalar: Int64(size)) - Tensor(scalar: Int64(1))
    var k = try levels.zerosLike()  // #{j : F(j) <= u} found so far
    var step = size / 2
    while step >= 1 {
        // Whether F(k + step - 1) <= u, i.e. at least k + step counts.
        let candidate = try k + Tensor(scalar: Int64(step))
        let threshold = try table.indexSelect(dim: 0, index: (rowStart + candidate).reshape([-1])).reshape(levels.shape)
        k = try Tensor.where(threshold.le(u), candidate, k)
        step /= 2
    }
    return try k.to(.float32)
}

/// The diamond-square plasma fractal of ImageNet-C's `plasma_fractal`, as tensor ops.
///
/// Starting from a 1x1 grid [0], each octave doubles the grid: square centres get the
/// mean of their four corners plus noise, then edge midpoints the mean of their four
/// diamond neighbours plus noise (toroidal wrap), with noise w * U(-w, w) (w = 100, divided
/// by `wibbleDecay` after every octave; the reference's "wibbled mean" scales by w twice,
/// kept here). The result is shifted and scaled to [0, 1].
///
/// - Returns: [mapSize, mapSize] float64; `mapSize` must be a power of two.
func plasmaFractal(mapSize: Int, wibbleDecay: Double, generator: Generator) throws -> Tensor {
    var grid = try Tensor.zeros([1, 1], dtype: .float64)  // the points at the current step
    var wibble = 100.0
    var n = 1
    func roll(_ t: Tensor, _ shift: Int, dim: Int) throws -> Tensor {
        let size = t.shape[dim]
        guard size > 1 else { return t }
        let k = ((shift % size) + size) % size  // out[i] = t[i - shift]
        return try Tensor.cat(
            [t.narrow(dim: dim, start: size - k, length: k), t.narrow(dim: dim, start: 0, length: size - k)], dim: dim)
    }
    func wibbledMean(_ sum: Tensor) throws -> Tensor {
        try sum / 4 + Tensor.uniform(sum.shape, low: -wibble, high: wibble, dtype: .float64, generator: generator)
            * wibble
    }
    while n < mapSize {
        // Squares: centre (i + 1/2, j + 1/2) from corners (i, j), (i+1, j), (i, j+1), (i+1, j+1).
        let columnPairs = try grid + roll(grid, -1, dim: 0)
        let centres = try wibbledMean(columnPairs + roll(columnPairs, -1, dim: 1))  // [n, n]
        // Diamonds: (i, j + 1/2) from corners left/right and centres above/below.
        let rowMid = try wibbledMean(centres + roll(centres, 1, dim: 0) + grid + roll(grid, -1, dim: 1))
        // (i + 1/2, j) from corners above/below and centres left/right.
        let columnMid = try wibbledMean(centres + roll(centres, 1, dim: 1) + grid + roll(grid, -1, dim: 0))
        // Interleave into [2n, 2n]: even rows (corner, rowMid, ...), odd rows (columnMid, centre, ...).
        let even = try Tensor.stack([grid, rowMid], dim: 2).reshape([n, 2 * n])
        let odd = try Tensor.stack([columnMid, centres], dim: 2).reshape([n, 2 * n])
        grid = try Tensor.stack([even, odd], dim: 1).reshape([2 * n, 2 * n])
        n *= 2
        wibble /= wibbleDecay
    }
    let shifted = try grid - grid.amin()
    return try shifted / shifted.amax().clamp(min: 1e-300)
}

/// Defocus blur of x [3, H, W] float by ImageNet-C's `disk` kernel.
func defocus(_ x: Tensor, radius: Double, aliasBlur: Double) throws -> Tensor {
    let kernel = defocusKernel(radius: radius, aliasBlur: aliasBlur)
    let size = kernel.count
    let half = size / 2
    let weight = try Tensor(kernel.flatMap { $0.map { Float($0) } }, shape: [1, 1, size, size])
        .expand([3, 1, size, size]).contiguous().to(device: x.device)
    let rows = try Tensor(reflect101Indices(length: x.shape[1], pad: half)).to(device: x.device)
    let columns = try Tensor(reflect101Indices(length: x.shape[2], pad: half)).to(device: x.device)
    let padded = try x.indexSelect(dim: 1, index: rows).indexSelect(dim: 2, index: columns)
    return try conv2d(padded.unsqueeze(dim: 0), weight: weight, groups: 3).squeeze(dim: 0)
}

/// ImageNet-C's `disk(radius, alias_blur)`: the indicator of u^2 + v^2 <= r^2 on
/// u, v in -L ... L (L = 8 for r <= 8, else r), divided by its sum, then blurred by a
/// Gaussian of std `aliasBlur` (3x3 for r <= 8, else 5x5; reflect-101 borders, as
/// `cv2.GaussianBlur`). Computed on the (at most 21x21) kernel, not on pixels.
///
/// As in the reference the blurred kernel is not renormalised: for r = 8 and r = 10 the disk
/// touches the array's border, the reflected border adds mass back, and the kernel sums to
/// slightly more than 1 (1.011 at r = 10), brightening the image by that factor.
func defocusKernel(radius: Double, aliasBlur: Double) -> [[Double]] {
    let extent = radius <= 8 ? 8 : Int(radius.rounded(.up))
    let gaussianSize = radius <= 8 ? 3 : 5
    let size = 2 * extent + 1
    var disk = [[Double]](repeating: [Double](repeating: 0, count: size), count: size)
    var total = 0.0
    for row in 0..<size {
        for column in 0..<size {
            let u = Double(column - extent)
            let v = Double(row - extent)
            if u * u + v * v <= radius * radius {
                disk[row][column] = 1
                total += 1
            }
        }
    }
    disk = disk.map { $0.map { $0 / total } }
    // Separable Gaussian, OpenCV's getGaussianKernel for sigma > 0.
    let g = gaussianSize / 2
    var taps = (0..<gaussianSize).map { i -> Double in
        let d = Double(i - g)
        return Foundation.exp(-d * d / (2 * aliasBlur * aliasBlur))
    }
    let tapSum = taps.reduce(0, +)
    taps = taps.map { $0 / tapSum }
    let index = reflect101Indices(length: size, pad: g).map { Int($0) }
    var horizontal = disk
    for row in 0..<size {
        for column in 0..<size {
            horizontal[row][column] = (0..<gaussianSize).reduce(0) { $0 + taps[$1] * disk[row][index[column + $1]] }
        }
    }
    var out = horizontal
    for row in 0..<size {
        for column in 0..<size {
            out[row][column] = (0..<gaussianSize).reduce(0) { $0 + taps[$1] * horizontal[index[row + $1]][column] }
        }
    }
    return out
}

/// Source indices of a line of `length` padded by `pad` on each side with OpenCV's
/// BORDER_REFLECT_101 (gfedcb|abcdefgh|gfedcba): index i of the padded line reads
/// `result[i]`.
func reflect101Indices(length: Int, pad: Int) -> [Int64] {
    guard length > 1 else { return [Int64](repeating: 0, count: length + 2 * pad) }
    let period = 2 * (length - 1)
    return (-pad..<(length + pad)).map { i in
        var j = i % period
        if j < 0 { j += period }
        return Int64(j < length ? j : period - j)
    }
}
