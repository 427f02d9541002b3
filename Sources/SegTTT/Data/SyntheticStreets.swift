// Synthetic street scenes: a built-in, seeded domain shift that needs no files.
//
// Every frame is a street seen from a car. Geometry is one-point perspective: a horizon at
// row y_h, a vanishing point (v_x, y_h), and pixel centres (x, y) = (column + 1/2, row + 1/2).
// A ground row y below the horizon has nearness
//
//     t(y) = (y - y_h) / (H - y_h)            (0 at the horizon, about 1 at the bottom)
//
// and there the road is |x - c(t)| < h(t) with centre c(t) = v_x + t (c_b - v_x) and
// half-width h(t) = t h_b (c_b, h_b: centre and half-width at the bottom); the sidewalks are
// h(t) <= |x - c(t)| < h(t) (1 + s). Beyond the sidewalks stand building facades and park
// strips whose tops are lines through the vanishing point (top(x) = y_h - f |x - v_x|), with
// windows on a grid that is regular on the facade plane, so in the image its columns are
// 1 / |x - v_x| and its rows (y_h - y) / |x - v_x|. Trees, poles, people and cars stand on
// the ground at a nearness t, sized by the metre scale m(t) = h(t) / 3 pixels per metre (a
// road 6 m wide), and are drawn far to near so that nearer ones occlude.
//
// Geometry and labels come from a `Generator` seeded by (frame index, seed) alone; a style
// then paints them (per-class colours, textures, lighting, haze, lamps, noise) with draws
// from a second generator seeded by (frame index, seed, style). The same frame in two styles
// therefore has the same label bit for bit and another appearance: a covariate shift, as
// between day and night or between two cities, with nothing to download.
//
// Everything is drawn with tensor ops on whole images (masks from coordinate grids,
// comparisons and `where`); Swift loops run only over objects, never over pixels.
import Foundation
import Torch

/// The eight classes of `SyntheticStreets`, raw value = label value. `ignoreLabel` is not
/// used: every pixel has a class.
public enum StreetClass: Int, CaseIterable, Sendable {
    case sky, road, sidewalk, building, vegetation, car, person, pole

    /// "sky", "road", ...
    public var name: String { String(describing: self) }
}

/// How `SyntheticStreets` paints a scene. Every style paints the same geometry and labels;
/// they differ only in appearance, computed per pixel from the class k, an instance colour
/// offset u in [-1, 1]^3, a detail term d (windows, wheels, road markings), a texture field
/// T (about [-1, 1]) and the nearness n in [0, 1] (0 at the horizon and in the sky):
///
///     a = (C_k + sigma_k u + j_k) * b * (1 + d) * (1 + A_k T)     albedo (lamps: their colour)
///     y = gain * (a * tint)^gamma                                 lighting
///     y = (y - mean(y)) * contrast + mean(y)                      per channel, over the image
///     y = (1 - alpha) y + alpha * haze,  alpha = 1 - exp(-rho (1 / max(n, 0.05) - 1))
///     y = y + glow * (2 blur(L) + L) + N(0, noise^2)             L: lamps and lit windows
///
/// with C_k the palette, sigma_k the instance spread, j_k ~ N(0, jitter^2) and b ~
/// U(1 - beta, 1 + beta) drawn per frame, A_k the texture amplitude, blur two passes of a
/// 7 x 7 box; the sky is a vertical gradient from its zenith to its horizon colour. The
/// image is round(clamp(y, 0, 1) * 255).
public enum StreetStyle: String, CaseIterable, Sendable {
    /// Daylight: the palette a source model is trained on, mild textures and per-frame jitter.
    case source
    /// Dusk: darker (gain 0.6, gamma 1.2), orange tint, contrast 0.7, an orange sky, some
    /// lit windows and glowing lamps.
    case dusk
    /// Fog: a grey haze with density rho = 0.5 (distant things fade into the sky), contrast 0.9.
    case fog
    /// Night: gain 0.28, gamma 1.4, bluish, a black sky; glowing headlights, tail lights,
    /// street lamps and lit windows (35 %); sensor noise std 0.035.
    case night
    /// Another city's palette: every class colour moved (red asphalt, blue sidewalks, white
    /// walls, olive foliage, green poles, a yellowish sky).
    case palette
    /// Strong texture on every surface (amplitude 0.7): stripes and checkers per class
    /// (period 2 to 4 pixels), coloured pixel noise and coloured blotches.
    case texture

    /// The styles that differ from `.source`.
    public static var targets: [StreetStyle] { allCases.filter { $0 != .source } }

    /// The valid names, comma-separated, for error messages and help text.
    public static var validNames: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// A mistake in configuring or indexing `SyntheticStreets`.
public enum SyntheticStreetsError: Error, CustomStringConvertible, Equatable {
    case invalidSize(Pair)
    case invalidCount(Int)
    case indexOutOfRange(index: Int, count: Int)

    public var description: String {
        switch self {
        case .invalidSize(let size):
            return "synthetic streets of size \(size) are too small; use at least 16 rows and 16 columns, e.g. "
                + "Pair(96, 128)"
        case .invalidCount(let count):
            return "synthetic streets need a frame count of at least 0, got \(count)"
        case .indexOutOfRange(let index, let count):
            return "synthetic streets frame index \(index) is outside 0..<\(count); ask for an index below count"
        }
    }
}

/// Street scenes with labels generated from a seed: the same frames in a source style and
/// several target styles (`StreetStyle`), for training a source model and measuring how much
/// it loses under a shift, with no files.
///
/// Frame `index` is the same image and label whenever it is asked for; its label depends
/// on (index, seed) only, not on the style.
public struct SyntheticStreets: SegmentationDataset, FrameNaming, Sendable {
    /// Class names, index = label value: sky, road, sidewalk, building, vegetation, car,
    /// person, pole.
    public static let classes = StreetClass.allCases.map(\.name)

    public let style: StreetStyle
    public let count: Int
    /// Image size (height, width).
    public let size: Pair
    public let seed: UInt64

    /// - Parameters:
    ///   - style: how frames are painted.
    ///   - count: number of frames.
    ///   - size: (height, width), at least 16 x 16; sides that are multiples of 8 suit ESPNet.
    ///   - seed: selects the scenes (and their appearance).
    /// - Throws: `SyntheticStreetsError` for a size below 16 x 16 or a negative count.
    public init(style: StreetStyle = .source, count: Int, size: Pair = Pair(96, 128), seed: UInt64 = 0) throws {
        guard size.height >= 16, size.width >= 16 else { throw SyntheticStreetsError.invalidSize(size) }
        guard count >= 0 else { throw SyntheticStreetsError.invalidCount(count) }
        self.style = style
        self.count = count
        self.size = size
        self.seed = seed
    }

    /// "synthetic-streets-source", "synthetic-streets-night", ...
    public var name: String { "synthetic-streets-\(style.rawValue)" }

    public var classNames: [String] { Self.classes }

    /// "source-000012": the style and the frame index.
    public func frameName(at index: Int) -> String {
        let digits = String(index)
        return "\(style.rawValue)-" + String(repeating: "0", count: Swift.max(0, 6 - digits.count)) + digits
    }

    /// Frame `index`: image [3, H, W] uint8 RGB and label [H, W] int64 in 0...7.
    public func sample(at index: Int) throws -> Sample {
        guard index >= 0, index < count else { throw SyntheticStreetsError.indexOutOfRange(index: index, count: count) }
        let scene = try Self.scene(index: index, seed: seed, size: size)
        let image = try scene.render(style: style, seed: Self.appearanceSeed(index: index, seed: seed, style: style))
        return Sample(name: frameName(at: index), image: image, label: try scene.label.contiguous())
    }

    /// The geometry and labels of frame `index` (the same in every style).
    static func scene(index: Int, seed: UInt64, size: Pair) throws -> StreetCanvas {
        let canvas = try StreetCanvas(size: size)
        let random = try LayoutRandom(seed: Corruption.generatorSeed(frameIndex: index, seed: seed))
        try drawStreet(on: canvas, random: random)
        return canvas
    }

    /// The seed of the appearance draws of frame `index` in `style`.
    static func appearanceSeed(index: Int, seed: UInt64, style: StreetStyle) -> UInt64 {
        let salt = UInt64(StreetStyle.allCases.firstIndex(of: style) ?? 0) &+ 1
        return Corruption.generatorSeed(frameIndex: index, seed: seed ^ Corruption.splitMix64(salt &* 0xA11C_E5EE))
    }
}

// MARK: - Random layout

/// Uniform draws from a seeded `Generator`, fetched 256 at a time and handed out in order,
/// so a layout costs a few tensor draws rather than one per number.
final class LayoutRandom {
    private let generator: Generator
    private var block: [Double] = []
    private var position = 0

    init(seed: UInt64) throws {
        generator = try Generator(seed: seed)
    }

    /// A draw from U[low, high).
    func uniform(_ low: Double, _ high: Double) throws -> Double {
        if position == block.count {
            block = try Tensor.uniform([256], dtype: .float64, generator: generator).toArray(Double.self)
            position = 0
        }
        let u = block[position]
        position += 1
        return low + (high - low) * u
    }

    /// True with probability p.
    func chance(_ p: Double) throws -> Bool { try uniform(0, 1) < p }

    /// An integer in `range`, each equally likely.
    func integer(_ range: ClosedRange<Int>) throws -> Int {
        let span = Double(range.count)
        return range.lowerBound + Swift.min(range.count - 1, Int(try uniform(0, span)))
    }

    /// A colour offset in [-1, 1]^3.
    func tint() throws -> [Double] { [try uniform(-1, 1), try uniform(-1, 1), try uniform(-1, 1)] }
}

// MARK: - The canvas

/// x - floor(x), elementwise.
private func frac(_ x: Tensor) throws -> Tensor { try x - x.floor() }

/// A float32 scalar tensor (broadcasts against any shape).
private func scalar(_ value: Double) throws -> Tensor { try Tensor(scalar: Float(value)) }

/// A float32 colour [3, 1, 1].
private func colour(_ rgb: [Double]) throws -> Tensor { try Tensor(rgb.map(Float.init), shape: [3, 1, 1]) }

/// The per-pixel maps of one frame while it is drawn, painter's-algorithm style: each
/// `paint` overwrites every map under its mask.
final class StreetCanvas {
    let height: Int
    let width: Int
    /// Pixel-centre rows y = row + 1/2 [H, 1] and columns x = column + 1/2 [1, W], float32.
    let ys: Tensor
    let xs: Tensor
    /// Class per pixel [H, W] int64 (starts as sky).
    private(set) var label: Tensor
    /// Instance colour offset u [3, H, W] in [-1, 1].
    private(set) var tint: Tensor
    /// Detail d [H, W]: the albedo is multiplied by 1 + d (windows, wheels, markings).
    private(set) var detail: Tensor
    /// Nearness n [H, W] in [0, 1]: 0 at the horizon and in the sky, about 1 at the camera.
    private(set) var nearness: Tensor
    /// Lamp colour [3, H, W] where `lampMask` is set (headlights, tail lights, street lamps).
    private(set) var lamps: Tensor
    /// Whether the pixel is a lamp [H, W] (bool).
    private(set) var lampMask: Tensor
    /// Whether the pixel is a window of a building [H, W] (bool).
    private(set) var windowMask: Tensor
    /// The window a window pixel belongs to, an id in 0 ..< `windowIds` [H, W] int64.
    private(set) var windowCell: Tensor
    /// The number of distinct window ids.
    static let windowIds = 61 * 61
    /// The horizon row y_h (set when the street is drawn).
    var horizon: Double = 0

    init(size: Pair) throws {
        height = size.height
        width = size.width
        ys = try (Tensor.arange(0, Double(size.height), dtype: .float32) + 0.5).reshape([size.height, 1])
        xs = try (Tensor.arange(0, Double(size.width), dtype: .float32) + 0.5).reshape([1, size.width])
        label = try Tensor.full([height, width], value: Double(StreetClass.sky.rawValue), dtype: .int64)
        tint = try Tensor.zeros([3, height, width])
        detail = try Tensor.zeros([height, width])
        nearness = try Tensor.zeros([height, width])
        lamps = try Tensor.zeros([3, height, width])
        lampMask = try Tensor.zeros([height, width], dtype: .bool)
        windowMask = try Tensor.zeros([height, width], dtype: .bool)
        windowCell = try Tensor.zeros([height, width], dtype: .int64)
    }

    /// Pixels with x in [x0, x1) and y in [y0, y1) [H, W].
    func rectangle(x0: Double, x1: Double, y0: Double, y1: Double) throws -> Tensor {
        let columns = try xs.ge(x0).logicalAnd(xs.lt(x1))  // [1, W]
        let rows = try ys.ge(y0).logicalAnd(ys.lt(y1))  // [H, 1]
        return try rows.logicalAnd(columns)
    }

    /// Pixels with ((x - cx) / rx)^2 + ((y - cy) / ry)^2 <= 1 [H, W].
    func ellipse(cx: Double, cy: Double, rx: Double, ry: Double) throws -> Tensor {
        let u = try ((xs - cx) / rx).pow(2)  // [1, W]
        let v = try ((ys - cy) / ry).pow(2)  // [H, 1]
        return try (u + v).le(1)
    }

    /// Gives every pixel under `mask` [H, W] the class, instance tint, nearness and detail
    /// (0 where `detail` is nil), and clears its lamp and window marks.
    func paint(
        _ mask: Tensor, _ cls: StreetClass, tint rgb: [Double], nearness n: Tensor, detail d: Tensor? = nil
    ) throws {
        label = try Tensor.where(mask, Tensor(scalar: Int64(cls.rawValue)), label)
        tint = try Tensor.where(mask.unsqueeze(dim: 0), colour(rgb), tint)
        nearness = try Tensor.where(mask, n, nearness)
        detail = try Tensor.where(mask, d ?? scalar(0), detail)
        lampMask = try lampMask.logicalAnd(mask.logicalNot())
        windowMask = try windowMask.logicalAnd(mask.logicalNot())
    }

    /// `paint` at a constant nearness.
    func paint(_ mask: Tensor, _ cls: StreetClass, tint rgb: [Double], nearness n: Double, detail d: Tensor? = nil)
        throws
    {
        try paint(mask, cls, tint: rgb, nearness: scalar(n), detail: d)
    }

    /// Marks the pixels of `mask` as a lamp of colour `rgb` (after painting the object).
    func addLamp(_ mask: Tensor, colour rgb: [Double]) throws {
        lamps = try Tensor.where(mask.unsqueeze(dim: 0), colour(rgb), lamps)
        lampMask = try lampMask.logicalOr(mask)
    }

    /// Marks the pixels of `mask` as windows with ids `cell` (after painting the facade).
    func addWindows(_ mask: Tensor, cell: Tensor) throws {
        windowMask = try windowMask.logicalOr(mask)
        windowCell = try Tensor.where(mask, cell, windowCell)
    }
}

// MARK: - The street

/// The road geometry of one frame (see the file header for the maths).
private struct Road {
    var horizon: Double  // y_h
    var vanishingX: Double  // v_x
    var bottomCentre: Double  // c_b
    var bottomHalfWidth: Double  // h_b
    var sidewalk: Double  // s: sidewalk width / road half-width
    var height: Double

    /// The ground row at nearness t.
    func row(_ t: Double) -> Double { horizon + t * (height - horizon) }
    /// Road centre c(t).
    func centre(_ t: Double) -> Double { vanishingX + t * (bottomCentre - vanishingX) }
    /// Road half-width h(t).
    func halfWidth(_ t: Double) -> Double { t * bottomHalfWidth }
    /// Pixels per metre m(t) (the road is 6 m wide).
    func metre(_ t: Double) -> Double { halfWidth(t) / 3 }
    /// A column at nearness t, `offset` road half-widths from the centre (negative: left).
    func column(_ t: Double, offset: Double) -> Double { centre(t) + offset * halfWidth(t) }
}

/// Draws a whole street on `canvas`: ground, facades and park strips, then trees, poles,
/// people and cars from far to near.
private func drawStreet(on canvas: StreetCanvas, random r: LayoutRandom) throws {
    let h = Double(canvas.height)
    let w = Double(canvas.width)
    let road = Road(
        horizon: h * (try r.uniform(0.36, 0.48)), vanishingX: w * (try r.uniform(0.38, 0.62)),
        bottomCentre: w * (try r.uniform(0.38, 0.62)), bottomHalfWidth: w * (try r.uniform(0.3, 0.45)),
        sidewalk: try r.uniform(0.35, 0.6), height: h)
    let ys = canvas.ys
    let xs = canvas.xs
    let yh = road.horizon
    canvas.horizon = yh

    // Ground: t(y), c(t), h(t) per row [H, 1]; |x - c| per pixel [H, W].
    let t = try (ys - yh) / (h - yh)
    let tPositive = try t.clamp(min: 0.01, max: 1)
    let centre = try t * (road.bottomCentre - road.vanishingX) + road.vanishingX
    let half = try t * road.bottomHalfWidth
    let offset = try (xs - centre).abs()
    let ground = try ys.gt(yh)  // [H, 1]
    let outerEdge = try half * (1 + road.sidewalk)
    let beyond = try ground.logicalAnd(offset.ge(outerEdge))  // [H, W]

    // Grass beyond the sidewalks (facades overwrite most of it).
    try canvas.paint(beyond, .vegetation, tint: r.tint(), nearness: tPositive)
    // Sidewalks: paving seams every so many metres (regular in depth: 1 / t), a bright kerb.
    let seams = try frac(tPositive.pow(-1) * (try r.uniform(2.5, 4))).lt(0.12)  // [H, 1]
    let kerb = try offset.lt(half * (1 + 0.12 * road.sidewalk))
    let sidewalkDetail = try Tensor.where(kerb, scalar(0.25), Tensor.where(seams, scalar(-0.15), scalar(0)))
    try canvas.paint(
        ground.logicalAnd(offset.lt(outerEdge)), .sidewalk, tint: r.tint(), nearness: tPositive,
        detail: sidewalkDetail)
    // Road: a dashed centre line (dashes regular in depth) and edge lines.
    let lineWidth = try (half / 3 * 0.12).clamp(min: 0.5)  // 12 cm, at least half a pixel
    let dashes = try frac(tPositive.pow(-1) * (try r.uniform(1.5, 3))).lt(0.5).logicalAnd(t.gt(0.06))
    let centreLine = try (xs - centre).abs().lt(lineWidth).logicalAnd(dashes)
    let edgeLines = try offset.gt(half - lineWidth * 2).logicalAnd(offset.lt(half - lineWidth))
    let markings = try centreLine.logicalOr(edgeLines)
    try canvas.paint(
        ground.logicalAnd(offset.lt(half)), .road, tint: r.tint(), nearness: tPositive,
        detail: Tensor.where(markings, scalar(1.2), scalar(0)))

    try drawFacades(on: canvas, road: road, beyond: beyond, random: r)

    // Objects standing on the ground, drawn far to near.
    var objects: [(t: Double, draw: () throws -> Void)] = []
    for _ in 0..<(try r.integer(1...4)) {
        let tree = try TreeLayout(road: road, random: r)
        objects.append((tree.t, { try tree.draw(on: canvas) }))
    }
    for _ in 0..<(try r.integer(1...3)) {
        let pole = try PoleLayout(road: road, random: r)
        objects.append((pole.t, { try pole.draw(on: canvas) }))
    }
    for _ in 0..<(try r.integer(1...5)) {
        let person = try PersonLayout(road: road, random: r)
        objects.append((person.t, { try person.draw(on: canvas) }))
    }
    for _ in 0..<(try r.integer(1...5)) {
        let car = try CarLayout(road: road, random: r)
        objects.append((car.t, { try car.draw(on: canvas) }))
    }
    for object in objects.sorted(by: { $0.t < $1.t }) { try object.draw() }
}

/// Facade blocks and park strips on both sides, from the vanishing point outwards.
///
/// On the side x < v_x the distance d = v_x - x; a block covers d in [d0, d1) and the
/// pixels above its top line y_h - f d, both above the horizon and on the ground beyond the
/// sidewalk. The sidewalk's outer edge meets column x at nearness
/// t = d / (h_b (1 + s) -+ (c_b - v_x)) (left, right), the block's nearness.
private func drawFacades(on canvas: StreetCanvas, road: Road, beyond: Tensor, random r: LayoutRandom) throws {
    let ys = canvas.ys
    let xs = canvas.xs
    let yh = road.horizon
    let aboveHorizon = try ys.le(yh)  // [H, 1]
    let region = try aboveHorizon.logicalOr(beyond)  // [H, W]
    let w = Double(canvas.width)
    let scale = w / 128
    for left in [true, false] {
        let d = try left ? (road.vanishingX - xs) : (xs - road.vanishingX)  // [1, W]
        let dSafe = try d.clamp(min: 1)
        let reach = left ? road.vanishingX : w - road.vanishingX
        let lean = road.bottomCentre - road.vanishingX
        let edgeSlope = road.bottomHalfWidth * (1 + road.sidewalk) + (left ? -lean : lean)
        let blockNearness = try (d / edgeSlope).clamp(min: 0, max: 1)  // [1, W]
        var d0 = 0.0
        while d0 < reach {
            let d1 = Swift.min(reach + 1, d0 + Swift.max(3, reach * (try r.uniform(0.12, 0.4))))
            let inBlock = try d.ge(d0).logicalAnd(d.lt(d1))  // [1, W]
            let kind = try r.uniform(0, 1)
            if kind < 0.65 {
                // A building: flat roof line towards the vanishing point, windows in perspective.
                let top = try (d * (-(try r.uniform(0.35, 1.5)))) + yh  // [1, W]
                let mask = try region.logicalAnd(inBlock).logicalAnd(ys.ge(top))
                let columns = try dSafe.pow(-1) * (try r.uniform(300, 500) * scale)  // [1, W]
                let rows = try (ys - yh) * (-(try r.uniform(6, 9))) / dSafe  // [H, W]
                let windows = try frac(columns).ge(0.25).logicalAnd(frac(columns).lt(0.75))
                    .logicalAnd(frac(rows).ge(0.3)).logicalAnd(frac(rows).lt(0.75)).logicalAnd(mask)
                let glass = try r.uniform(-0.6, -0.3)
                try canvas.paint(
                    mask, .building, tint: r.tint(), nearness: blockNearness,
                    detail: Tensor.where(windows, scalar(glass), scalar(0)))
                // Window ids from the integer parts of both coordinates, modulo 61.
                let column = try columns.floor() - (columns.floor() / 61).floor() * 61
                let row = try rows.floor() - (rows.floor() / 61).floor() * 61
                try canvas.addWindows(windows, cell: (column * 61 + row).to(.int64))
            } else if kind < 0.9 {
                // A park strip: a low top line with rounded crowns every p pixels of d.
                let period = try r.uniform(5, 12) * scale
                let bump = try r.uniform(2, 6) * scale
                let u = try frac(d / period) * 2 - 1
                let top = try d * (-(try r.uniform(0.1, 0.45))) + yh - (1 - u.pow(2)) * bump
                let mask = try region.logicalAnd(inBlock).logicalAnd(ys.ge(top))
                try canvas.paint(mask, .vegetation, tint: r.tint(), nearness: blockNearness)
            }  // else a gap: sky above, grass below
            d0 = d1
        }
    }
}

/// A tree on the outer part of a sidewalk: a trunk and a crown of three ellipses.
private struct TreeLayout {
    let t: Double
    let x: Double
    let ground: Double
    let metre: Double
    let trunkHeight: Double
    let crownRadius: Double
    let tint: [Double]

    init(road: Road, random r: LayoutRandom) throws {
        t = try r.uniform(0.15, 0.9)
        let side: Double = try r.chance(0.5) ? -1 : 1
        x = road.column(t, offset: side * (1 + road.sidewalk * (try r.uniform(0.5, 1.1))))
        ground = road.row(t)
        metre = road.metre(t)
        trunkHeight = metre * (try r.uniform(1.8, 2.8))
        crownRadius = metre * (try r.uniform(1.4, 2.3))
        tint = try r.tint()
    }

    func draw(on canvas: StreetCanvas) throws {
        let trunkWidth = Swift.max(1, 0.35 * metre)
        let trunk = try canvas.rectangle(
            x0: x - trunkWidth / 2, x1: x + trunkWidth / 2, y0: ground - trunkHeight - crownRadius * 0.5, y1: ground)
        let cy = ground - trunkHeight - crownRadius * 0.7
        let r = crownRadius
        let crown = try canvas.ellipse(cx: x, cy: cy, rx: r, ry: r * 0.9)
            .logicalOr(canvas.ellipse(cx: x - 0.55 * r, cy: cy + 0.25 * r, rx: 0.7 * r, ry: 0.6 * r))
            .logicalOr(canvas.ellipse(cx: x + 0.55 * r, cy: cy + 0.2 * r, rx: 0.7 * r, ry: 0.6 * r))
        // The trunk is vegetation too (as in Cityscapes), darker.
        try canvas.paint(
            trunk.logicalOr(crown), .vegetation, tint: tint, nearness: t,
            detail: Tensor.where(trunk.logicalAnd(crown.logicalNot()), scalar(-0.5), scalar(0)))
    }
}

/// A street lamp: a thin pole about 7 m tall at the sidewalk's outer edge, an arm towards
/// the road and a lamp at its end.
private struct PoleLayout {
    let t: Double
    let x: Double
    let ground: Double
    let metre: Double
    let towardsRoad: Double
    let tallness: Double
    let tint: [Double]

    init(road: Road, random r: LayoutRandom) throws {
        t = try r.uniform(0.12, 0.95)
        let side: Double = try r.chance(0.5) ? -1 : 1
        towardsRoad = -side
        x = road.column(t, offset: side * (1 + road.sidewalk * (try r.uniform(0.6, 0.9))))
        ground = road.row(t)
        metre = road.metre(t)
        tallness = metre * (try r.uniform(5.5, 8))
        tint = try r.tint()
    }

    func draw(on canvas: StreetCanvas) throws {
        let width = Swift.max(1.5, 0.3 * metre)
        let top = ground - tallness
        let pole = try canvas.rectangle(x0: x - width / 2, x1: x + width / 2, y0: top, y1: ground)
        let armEnd = x + towardsRoad * 1.3 * metre
        let armThickness = Swift.max(1, 0.15 * metre)
        let arm = try canvas.rectangle(
            x0: Swift.min(x, armEnd), x1: Swift.max(x, armEnd), y0: top, y1: top + armThickness)
        let lampRadius = Swift.max(0.8, 0.25 * metre)
        let lamp = try canvas.ellipse(
            cx: armEnd, cy: top + armThickness + lampRadius * 0.5, rx: lampRadius, ry: lampRadius * 0.7)
        try canvas.paint(pole.logicalOr(arm).logicalOr(lamp), .pole, tint: tint, nearness: t)
        try canvas.addLamp(lamp, colour: [1.0, 0.85, 0.55])
    }
}

/// A pedestrian on a sidewalk: a thin ellipse for the body and a round head, 1.6 to 1.9 m.
private struct PersonLayout {
    let t: Double
    let x: Double
    let ground: Double
    let tallness: Double
    let tint: [Double]

    init(road: Road, random r: LayoutRandom) throws {
        t = try r.uniform(0.3, 1.0)
        let side: Double = try r.chance(0.5) ? -1 : 1
        x = road.column(t, offset: side * (1 + road.sidewalk * (try r.uniform(0.2, 0.8))))
        ground = road.row(t)
        tallness = road.metre(t) * (try r.uniform(1.6, 1.9))
        tint = try r.tint()
    }

    func draw(on canvas: StreetCanvas) throws {
        let p = tallness
        let body = try canvas.ellipse(cx: x, cy: ground - 0.42 * p, rx: Swift.max(0.8, 0.15 * p), ry: 0.42 * p)
        let headRadius = Swift.max(0.7, 0.1 * p)
        let head = try canvas.ellipse(cx: x, cy: ground - 0.87 * p, rx: headRadius, ry: headRadius)
        try canvas.paint(
            body.logicalOr(head), .person, tint: tint, nearness: t,
            detail: Tensor.where(head.logicalAnd(body.logicalNot()), scalar(0.5), scalar(0)))
    }
}

/// A car on the road seen from behind or ahead: body, cabin with windows, dark wheels,
/// and headlights (white) or tail lights (red).
private struct CarLayout {
    let t: Double
    let x: Double
    let ground: Double
    let metre: Double
    let width: Double
    let facingCamera: Bool
    let tint: [Double]

    init(road: Road, random r: LayoutRandom) throws {
        t = try r.uniform(0.15, 1.0)
        x = road.column(t, offset: try r.uniform(-0.75, 0.75))
        ground = road.row(t)
        metre = road.metre(t)
        width = metre * (try r.uniform(1.7, 2.0))
        facingCamera = try r.chance(0.5)
        tint = try r.tint()
    }

    func draw(on canvas: StreetCanvas) throws {
        let m = metre
        let body = try canvas.rectangle(
            x0: x - width / 2, x1: x + width / 2, y0: ground - 1.0 * m, y1: ground - 0.25 * m)
        let cabinHalf = 0.38 * width
        let cabin = try canvas.rectangle(
            x0: x - cabinHalf, x1: x + cabinHalf, y0: ground - 1.5 * m, y1: ground - 0.99 * m)
        let glass = try canvas.rectangle(
            x0: x - cabinHalf + 0.08 * width, x1: x + cabinHalf - 0.08 * width, y0: ground - 1.42 * m,
            y1: ground - 1.05 * m)
        let wheels = try canvas.rectangle(x0: x - 0.46 * width, x1: x - 0.26 * width, y0: ground - 0.3 * m, y1: ground)
            .logicalOr(canvas.rectangle(x0: x + 0.26 * width, x1: x + 0.46 * width, y0: ground - 0.3 * m, y1: ground))
        let detail = try Tensor.where(
            wheels, scalar(-0.85), Tensor.where(glass.logicalAnd(cabin), scalar(-0.55), scalar(0)))
        try canvas.paint(body.logicalOr(cabin).logicalOr(wheels), .car, tint: tint, nearness: t, detail: detail)
        let lightWidth = Swift.max(1, 0.15 * width)
        let lightHeight = Swift.max(1, 0.18 * m)
        let y0 = ground - 0.8 * m
        let lights = try canvas.rectangle(
            x0: x - 0.46 * width, x1: x - 0.46 * width + lightWidth, y0: y0, y1: y0 + lightHeight
        )
        .logicalOr(
            canvas.rectangle(x0: x + 0.46 * width - lightWidth, x1: x + 0.46 * width, y0: y0, y1: y0 + lightHeight))
        try canvas.addLamp(lights, colour: facingCamera ? [1.0, 1.0, 0.9] : [0.95, 0.1, 0.05])
    }
}

// MARK: - Appearance

/// The constants of a style (see `StreetStyle` for the formula they enter).
struct StreetAppearance {
    /// Sky colour at the top of the image and at the horizon.
    var skyTop: [Double]
    var skyHorizon: [Double]
    /// C_k, RGB in [0, 1] per class (the sky's entry is unused: it is the gradient).
    var colours: [[Double]]
    /// sigma_k: how far instance colours spread around C_k.
    var spread: [Double]
    /// A_k: texture amplitude per class.
    var texture: [Double]
    /// Weight of the high-frequency stripes and checkers in the texture field (0: none).
    var stripes: Double
    /// Std of the per-frame class colour jitter j_k, and the brightness range beta.
    var jitter: Double
    var brightness: Double
    var gain: Double
    var gamma: Double
    var tint: [Double]
    var contrast: Double
    /// Haze colour and density rho (0: no haze).
    var haze: [Double]
    var hazeDensity: Double
    /// Glow strength of lamps and lit windows (0: lamps only show their colour).
    var glow: Double
    /// Probability that a window is lit, and its colour.
    var litWindows: Double
    var noise: Double

    static let daylightColours: [[Double]] = [
        [0.55, 0.7, 0.9],  // sky (unused)
        [0.36, 0.36, 0.38],  // road
        [0.62, 0.58, 0.55],  // sidewalk
        [0.6, 0.46, 0.38],  // building
        [0.24, 0.47, 0.17],  // vegetation
        [0.45, 0.45, 0.5],  // car
        [0.32, 0.26, 0.36],  // person
        [0.3, 0.3, 0.28],  // pole
    ]

    static let daylight = StreetAppearance(
        skyTop: [0.33, 0.52, 0.85], skyHorizon: [0.7, 0.8, 0.93], colours: daylightColours,
        spread: [0.03, 0.05, 0.06, 0.14, 0.08, 0.3, 0.22, 0.05],
        texture: [0.03, 0.12, 0.1, 0.12, 0.35, 0.05, 0.1, 0.05], stripes: 0, jitter: 0.03, brightness: 0.1,
        gain: 1, gamma: 1, tint: [1, 1, 1], contrast: 1, haze: [0.75, 0.77, 0.8], hazeDensity: 0, glow: 0,
        litWindows: 0, noise: 0.01)

    static func of(_ style: StreetStyle) -> StreetAppearance {
        var a = daylight
        switch style {
        case .source:
            break
        case .dusk:
            a.skyTop = [0.25, 0.18, 0.35]
            a.skyHorizon = [0.95, 0.55, 0.3]
            a.gain = 0.6
            a.gamma = 1.2
            a.tint = [1.0, 0.7, 0.45]
            a.contrast = 0.7
            a.glow = 0.3
            a.litWindows = 0.15
            a.noise = 0.015
        case .fog:
            a.hazeDensity = 0.5
            a.contrast = 0.9
        case .night:
            a.skyTop = [0.01, 0.01, 0.04]
            a.skyHorizon = [0.05, 0.05, 0.1]
            a.gain = 0.28
            a.gamma = 1.4
            a.tint = [0.75, 0.8, 1.0]
            a.glow = 0.8
            a.litWindows = 0.35
            a.noise = 0.035
        case .palette:
            a.skyTop = [0.93, 0.78, 0.55]
            a.skyHorizon = [0.98, 0.92, 0.75]
            a.colours = [
                [0.95, 0.85, 0.65],  // sky (unused)
                [0.5, 0.3, 0.22],  // road: red asphalt
                [0.45, 0.55, 0.7],  // sidewalk: blue tiles
                [0.88, 0.88, 0.82],  // building: white-washed
                [0.55, 0.5, 0.12],  // vegetation: olive
                [0.5, 0.5, 0.45],  // car
                [0.6, 0.45, 0.3],  // person
                [0.15, 0.45, 0.3],  // pole: green
            ]
        case .texture:
            a.texture = [0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]
            a.stripes = 1
        }
        return a
    }
}

extension StreetCanvas {
    /// The image of this scene in `style` [3, H, W] uint8, appearance draws seeded by `seed`.
    func render(style: StreetStyle, seed: UInt64) throws -> Tensor {
        let a = StreetAppearance.of(style)
        let generator = try Generator(seed: seed)
        let hw = [height, width]
        let flat = try label.reshape([-1])
        /// A per-class table [8] or [8, 3] looked up at every pixel: [H, W] or [3, H, W].
        func lookup(_ values: [Double]) throws -> Tensor {
            try Tensor(values.map(Float.init)).indexSelect(dim: 0, index: flat).reshape(hw)
        }
        func lookup(_ rows: [[Double]], jitter: Tensor) throws -> Tensor {
            let table = try Tensor(rows.flatMap { $0.map(Float.init) }, shape: [rows.count, 3]) + jitter
            return try table.indexSelect(dim: 0, index: flat).transpose(0, 1).reshape([3] + hw)
        }

        // Albedo: palette + jitter + instance spread, brightness, detail, texture.
        let jitter = try Tensor.normal([StreetClass.allCases.count, 3], std: a.jitter, generator: generator)
        let brightness = try Tensor.uniform([1], low: 1 - a.brightness, high: 1 + a.brightness, generator: generator)
        var albedo = try lookup(a.colours, jitter: jitter) + tint * lookup(a.spread).unsqueeze(dim: 0)
        // The sky's gradient: zenith colour at the top row, horizon colour at the horizon.
        let s = try (ys / Swift.max(1, horizon)).clamp(max: 1).unsqueeze(dim: 0)  // [1, H, 1]
        let sky = try colour(a.skyTop) * (1 - s) + colour(a.skyHorizon) * s
        let isSky = try label.eq(Double(StreetClass.sky.rawValue)).unsqueeze(dim: 0)
        albedo = try Tensor.where(isSky, sky + jitter.narrow(dim: 0, start: 0, length: 1).reshape([3, 1, 1]), albedo)
        albedo = try albedo * brightness.reshape([1, 1, 1]) * (detail + 1).unsqueeze(dim: 0)
        albedo = try albedo * (lookup(a.texture).unsqueeze(dim: 0) * textureField(a, generator: generator) + 1)
        albedo = try Tensor.where(lampMask.unsqueeze(dim: 0), lamps, albedo).clamp(min: 0)

        // Lighting and contrast.
        var y = try (albedo * colour(a.tint)).pow(a.gamma) * a.gain
        if a.contrast != 1 {
            let mean = try y.mean(dims: [1, 2], keepDim: true)
            y = try (y - mean) * a.contrast + mean
        }
        // Haze: transmission exp(-rho (1/n - 1)) with depth proportional to 1 / n.
        if a.hazeDensity > 0 {
            let depth = try nearness.clamp(min: 0.05).pow(-1) - 1
            let alpha = try (1 - (depth * (-a.hazeDensity)).exp()).unsqueeze(dim: 0)
            y = try y * (1 - alpha) + colour(a.haze) * alpha
        }
        // Glow of lamps and lit windows, blurred twice by a 7 x 7 box.
        if a.glow > 0 {
            let lit = try Tensor.uniform([StreetCanvas.windowIds], generator: generator).lt(a.litWindows)
            let litWindows = try lit.indexSelect(dim: 0, index: windowCell.reshape([-1])).reshape(hw)
                .logicalAnd(windowMask)
            let windowLight = try Tensor.where(litWindows.unsqueeze(dim: 0), colour([1.0, 0.8, 0.45]), scalar(0))
            let lights = try Tensor.where(lampMask.unsqueeze(dim: 0), lamps, scalar(0)) + windowLight
            var blurred = try lights.unsqueeze(dim: 0)
            for _ in 0..<2 { blurred = try avgPool2d(blurred, kernelSize: 7, stride: 1, padding: 3) }
            y = try y + (blurred.squeeze(dim: 0) * 2 + lights) * a.glow
        }
        y = try y + Tensor.normal([3] + hw, std: a.noise, generator: generator)
        return try Corruption.toUInt8(y)
    }

    /// The texture field T: [1, H, W], smooth noise (bilinear from a 1/8 grid) and pixel
    /// noise; with `stripes`, [3, H, W]: per-class stripes and checkers of period 2 to 4
    /// pixels, coloured pixel noise and coloured blotches (bilinear from a 1/16 grid), so
    /// that the texture also moves each region's local mean colour.
    private func textureField(_ a: StreetAppearance, generator: Generator) throws -> Tensor {
        let coarse = try Tensor.uniform([1, 1, height / 8 + 2, width / 8 + 2], low: -1, high: 1, generator: generator)
        let smooth = try interpolate(coarse, size: Pair(height, width), mode: .bilinear(alignCorners: false))
            .reshape([1, height, width])
        guard a.stripes > 0 else {
            let fine = try Tensor.uniform([1, height, width], low: -1, high: 1, generator: generator)
            return try smooth * 0.6 + fine * 0.4
        }
        let fine = try Tensor.uniform([3, height, width], low: -1, high: 1, generator: generator)
        let blotchGrid = try Tensor.uniform(
            [1, 3, height / 16 + 2, width / 16 + 2], low: -1, high: 1, generator: generator)
        let blotches = try interpolate(blotchGrid, size: Pair(height, width), mode: .bilinear(alignCorners: false))
            .reshape([3, height, width])
        // +-1 square waves: vertical (period 3), horizontal (period 2), diagonal (period 4), checker.
        let vertical = try frac(xs / 3).lt(0.5).to(.float32) * 2 - 1  // [1, W]
        let horizontal = try frac(ys / 2).lt(0.5).to(.float32) * 2 - 1  // [H, 1]
        let diagonal = try frac((xs + ys) / 4).lt(0.5).to(.float32) * 2 - 1  // [H, W]
        let checker = try vertical * horizontal
        let flat = try label.reshape([-1])
        func weight(_ values: [Double]) throws -> Tensor {
            try Tensor(values.map(Float.init)).indexSelect(dim: 0, index: flat).reshape([height, width])
        }
        //                 sky road side bldg veg car pers pole
        let stripes =
            try vertical * weight([0, 1, 0, 0, 0, 1, 0, 0])
            + horizontal * weight([1, 0, 0, 1, 0, 0, 1, 0])
            + diagonal * weight([0, 0, 1, 0, 0, 0, 0, 1])
            + checker * weight([0, 0, 0, 0, 1, 0, 0, 0])
        return try (stripes.unsqueeze(dim: 0) * 0.5 + fine * 0.3 + blotches * 0.5) * a.stripes
    }
}
