import Foundation

/// A line chart as a standalone SVG file, which any browser shows without other tools: a
/// title, axes with grid lines at rounded tick values, axis labels, one polyline per series
/// and a legend naming the series in their colours.
///
/// The output depends only on the chart's contents, so equal charts give equal files.
public struct LinePlot {
    /// One named line.
    public struct Series {
        public var name: String
        /// The points in drawing order; points with a NaN or infinite coordinate are left out
        /// and the line joins their neighbours.
        public var points: [(x: Double, y: Double)]

        public init(name: String, points: [(x: Double, y: Double)]) {
            self.name = name
            self.points = points
        }

        /// The points that can be drawn: both coordinates finite.
        var finitePoints: [(x: Double, y: Double)] { points.filter { $0.x.isFinite && $0.y.isFinite } }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    /// The y axis's range; nil (or a range with an infinite bound) fits it to the data. Lines
    /// leaving a fixed range are clipped.
    public var yRange: ClosedRange<Double>?

    public init(title: String, xLabel: String, yLabel: String, series: [Series], yRange: ClosedRange<Double>? = nil) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.yRange = yRange
    }

    /// Line colours, one per series in order (Tableau's ten); series after the tenth reuse
    /// them with dashed lines.
    public static let colours = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    ]

    // MARK: layout, in SVG user units (pixels)

    static let plotWidth = 560.0
    static let plotHeight = 340.0
    static let marginLeft = 72.0
    static let marginTop = 44.0
    static let marginBottom = 56.0
    static let legendGap = 16.0
    /// Rough width of one character of the 12-unit sans-serif legend text.
    static let characterWidth = 7.0

    /// The chart as an SVG document.
    public func svg() -> String {
        let drawn = series.map(\.finitePoints)
        let allPoints = drawn.flatMap { $0 }
        let xAxis = Self.axis(fitting: allPoints.map(\.x))
        let fixedY = yRange.flatMap { $0.lowerBound.isFinite && $0.upperBound.isFinite ? $0 : nil }
        let yAxis = fixedY.map { Self.axis(fixed: $0) } ?? Self.axis(fitting: allPoints.map(\.y))

        let (left, top) = (Self.marginLeft, Self.marginTop)
        let (right, bottom) = (left + Self.plotWidth, top + Self.plotHeight)
        let longestName = series.map(\.name.count).max() ?? 0
        let legendWidth = series.isEmpty ? 0 : Self.legendGap + 32 + Double(longestName) * Self.characterWidth
        let width = (right + legendWidth + 16).rounded(.up)
        let height = bottom + Self.marginBottom
        func px(_ x: Double) -> Double { left + (x - xAxis.range.lowerBound) / xAxis.range.span * Self.plotWidth }
        func py(_ y: Double) -> Double { bottom - (y - yAxis.range.lowerBound) / yAxis.range.span * Self.plotHeight }
        let n = Self.number
        let plotArea = [("x", n(left)), ("y", n(top)), ("width", n(Self.plotWidth)), ("height", n(Self.plotHeight))]

        var lines = [
            #"<?xml version="1.0" encoding="UTF-8"?>"#,
            Self.open(
                "svg",
                [
                    ("xmlns", "http://www.w3.org/2000/svg"), ("width", n(width)), ("height", n(height)),
                    ("viewBox", "0 0 \(n(width)) \(n(height))"), ("font-family", "sans-serif"), ("font-size", "12"),
                ]),
            Self.element("title", [], text: title),
            Self.element("rect", [("width", "100%"), ("height", "100%"), ("fill", "white")]),
            "<defs>" + Self.open("clipPath", [("id", "plot-area")]) + Self.element("rect", plotArea)
                + "</clipPath></defs>",
        ]

        lines.append(Self.open("g", [("class", "grid"), ("stroke", "#dddddd"), ("stroke-width", "1")]))
        for tick in xAxis.ticks {
            lines.append(
                Self.element("line", [("x1", n(px(tick))), ("y1", n(top)), ("x2", n(px(tick))), ("y2", n(bottom))]))
        }
        for tick in yAxis.ticks {
            lines.append(
                Self.element("line", [("x1", n(left)), ("y1", n(py(tick))), ("x2", n(right)), ("y2", n(py(tick)))]))
        }
        lines.append("</g>")
        lines.append(
            Self.element(
                "rect",
                [("class", "frame")] + plotArea + [("fill", "none"), ("stroke", "#333333"), ("stroke-width", "1")]))

        lines.append(Self.open("g", [("class", "x-ticks"), ("text-anchor", "middle"), ("fill", "#333333")]))
        for tick in xAxis.ticks {
            let label = Self.tickLabel(tick, step: xAxis.step)
            lines.append(Self.element("text", [("x", n(px(tick))), ("y", n(bottom + 18))], text: label))
        }
        lines.append("</g>")
        lines.append(Self.open("g", [("class", "y-ticks"), ("text-anchor", "end"), ("fill", "#333333")]))
        for tick in yAxis.ticks {
            let label = Self.tickLabel(tick, step: yAxis.step)
            lines.append(Self.element("text", [("x", n(left - 8)), ("y", n(py(tick) + 4))], text: label))
        }
        lines.append("</g>")

        let centre = n(left + Self.plotWidth / 2)
        lines.append(
            Self.element(
                "text",
                [
                    ("class", "title"), ("x", centre), ("y", "26"), ("text-anchor", "middle"), ("font-size", "16"),
                    ("font-weight", "bold"),
                ],
                text: title))
        lines.append(
            Self.element(
                "text", [("class", "x-label"), ("x", centre), ("y", n(height - 12)), ("text-anchor", "middle")],
                text: xLabel))
        let (labelX, labelY) = (n(18), n(top + Self.plotHeight / 2))
        lines.append(
            Self.element(
                "text",
                [
                    ("class", "y-label"), ("x", labelX), ("y", labelY), ("text-anchor", "middle"),
                    ("transform", "rotate(-90 \(labelX) \(labelY))"),
                ],
                text: yLabel))

        lines.append(
            Self.open(
                "g", [("class", "series"), ("clip-path", "url(#plot-area)"), ("fill", "none"), ("stroke-width", "2")]))
        for (index, points) in drawn.enumerated() where !points.isEmpty {
            let coordinates = points.map { "\(n(px($0.x))),\(n(py($0.y)))" }.joined(separator: " ")
            lines.append(Self.element("polyline", Self.stroke(index) + [("points", coordinates)]))
            // A line through one point draws nothing; mark the point.
            if points.count == 1 {
                lines.append(
                    Self.element(
                        "circle",
                        [
                            ("cx", n(px(points[0].x))), ("cy", n(py(points[0].y))), ("r", "3"),
                            ("fill", Self.colours[index % Self.colours.count]), ("stroke", "none"),
                        ]))
            }
        }
        lines.append("</g>")

        if !series.isEmpty {
            lines.append(Self.open("g", [("class", "legend"), ("fill", "#333333")]))
            let x = right + Self.legendGap
            for (index, item) in series.enumerated() {
                let y = top + 10 + Double(index) * 20
                lines.append(
                    Self.element(
                        "line",
                        [("x1", n(x)), ("y1", n(y)), ("x2", n(x + 24)), ("y2", n(y)), ("stroke-width", "2")]
                            + Self.stroke(index)))
                lines.append(Self.element("text", [("x", n(x + 32)), ("y", n(y + 4))], text: item.name))
            }
            lines.append("</g>")
        }
        lines.append("</svg>")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes `svg()` to `url` (UTF-8), replacing the file atomically.
    public func write(to url: URL) throws {
        try Data(svg().utf8).write(to: url, options: .atomic)
    }

    // MARK: axes

    /// An axis's drawn range, its tick values and the step between them.
    struct Axis {
        var range: ClosedRange<Double>
        var ticks: [Double]
        var step: Double
    }

    /// An axis fitted to `values`, widened to whole tick steps; a single value or none is
    /// padded to a range around it.
    static func axis(fitting values: [Double]) -> Axis {
        let padded = paddedRange(values.min().map { $0...(values.max() ?? $0) } ?? 0...1)
        let step = tickStep(for: padded)
        let lower = (padded.lowerBound / step).rounded(.down) * step
        let upper = (padded.upperBound / step).rounded(.up) * step
        return Axis(range: lower...upper, ticks: ticks(in: lower...upper, step: step), step: step)
    }

    /// An axis over a range fixed by the caller (padded when empty), ticks inside it.
    static func axis(fixed range: ClosedRange<Double>) -> Axis {
        let padded = paddedRange(range)
        let step = tickStep(for: padded)
        return Axis(range: padded, ticks: ticks(in: padded, step: step), step: step)
    }

    /// `range`, or when it is a single value, a range around it: ±10% of the value, or ±1
    /// around zero.
    static func paddedRange(_ range: ClosedRange<Double>) -> ClosedRange<Double> {
        guard range.lowerBound == range.upperBound else { return range }
        let value = range.lowerBound
        let pad = value == 0 ? 1 : Swift.abs(value) / 10
        return (value - pad)...(value + pad)
    }

    /// Tick values for an axis over `range`: the multiples of a step of 1, 2 or 5 times a
    /// power of ten that lie in the range, the step chosen as the smallest such one that gives
    /// at most about `target` intervals.
    ///
    /// For 0...100 this gives 0, 20, 40, 60, 80, 100; for 0.3...9.7, 2, 4, 6, 8.
    public static func ticks(in range: ClosedRange<Double>, target: Int = 5) -> [Double] {
        let padded = paddedRange(range)
        return ticks(in: padded, step: tickStep(for: padded, target: target))
    }

    /// The multiples of `step` in `range` (with a little tolerance for rounding).
    static func ticks(in range: ClosedRange<Double>, step: Double) -> [Double] {
        let tolerance = 1e-9
        let first = (range.lowerBound / step - tolerance).rounded(.up)
        let last = (range.upperBound / step + tolerance).rounded(.down)
        guard first <= last, last - first <= 1000 else { return [] }
        // Multiplying whole multiples avoids the drift of adding steps; + 0 turns -0 into 0.
        return (0...Int(last - first)).map { (first + Double($0)) * step + 0 }
    }

    /// The smallest step of 1, 2 or 5 times a power of ten that cuts `range` into at most
    /// about `target` intervals.
    static func tickStep(for range: ClosedRange<Double>, target: Int = 5) -> Double {
        let raw = range.span / Double(Swift.max(target, 1))
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let fraction = raw / magnitude
        let slack = 1 + 1e-9
        let multiple: Double = fraction <= slack ? 1 : fraction <= 2 * slack ? 2 : fraction <= 5 * slack ? 5 : 10
        return multiple * magnitude
    }

    /// A tick value with as many decimals as the step needs (none for whole steps).
    static func tickLabel(_ value: Double, step: Double) -> String {
        let decimals = Swift.max(0, -Int(log10(step).rounded(.down)))
        return String(format: "%.\(decimals)f", value)
    }

    // MARK: text

    /// The stroke colour (and dashes after the colour cycle's first round) of series `index`.
    static func stroke(_ index: Int) -> [(String, String)] {
        let colour = ("stroke", colours[index % colours.count])
        return index < colours.count ? [colour] : [colour, ("stroke-dasharray", "6 3")]
    }

    /// An element's start tag, `<name a="v" ...>`, values escaped.
    static func open(_ name: String, _ attributes: [(String, String)]) -> String {
        "<" + name + attributes.map { " \($0)=\"\(escaped($1))\"" }.joined() + ">"
    }

    /// An element holding `text` (escaped), or without text an empty element `<name .../>`.
    static func element(_ name: String, _ attributes: [(String, String)], text: String? = nil) -> String {
        let start = open(name, attributes)
        guard let text else { return String(start.dropLast()) + "/>" }
        return start + escaped(text) + "</\(name)>"
    }

    /// A coordinate with at most two decimals and no trailing zeros.
    static func number(_ value: Double) -> String {
        var text = String(format: "%.2f", value)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text == "-0" ? "0" : text
    }

    /// `text` with the characters XML gives meaning escaped.
    static func escaped(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&apos;"
            default: result.append(character)
            }
        }
        return result
    }
}

extension ClosedRange where Bound == Double {
    /// upperBound - lowerBound.
    fileprivate var span: Double { upperBound - lowerBound }
}
