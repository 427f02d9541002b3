import Foundation
import XCTest

@testable import SegTTTReports

#if canImport(FoundationXML)
    import FoundationXML
#endif

final class LinePlotTests: XCTestCase {
    /// The parsed document, failing the test when the SVG is not well-formed XML.
    func parse(_ svg: String, file: StaticString = #filePath, line: UInt = #line) throws -> XMLDocument {
        do {
            return try XMLDocument(xmlString: svg, options: [])
        } catch {
            XCTFail("not well-formed XML: \(error)\n\(svg)", file: file, line: line)
            throw error
        }
    }

    /// The elements named `name` anywhere in the document (the SVG namespace ignored).
    func elements(_ name: String, in document: XMLDocument) throws -> [XMLElement] {
        try document.nodes(forXPath: "//*[local-name()='\(name)']").compactMap { $0 as? XMLElement }
    }

    /// The texts of the `text` elements of group `group`.
    func texts(ofGroup group: String, in document: XMLDocument) throws -> [String] {
        try document.nodes(forXPath: "//*[local-name()='g'][@class='\(group)']/*[local-name()='text']")
            .map { $0.stringValue ?? "" }
    }

    /// The value of attribute `name` of `element`.
    func attribute(_ name: String, of element: XMLElement) -> String? {
        element.attributes?.first { $0.name == name }?.stringValue
    }

    func adaptationPlot() -> LinePlot {
        LinePlot(
            title: "mIoU <running> & per frame", xLabel: "frame", yLabel: "mIoU (%)",
            series: [
                .init(name: "tent", points: [(0, 40), (1, 45.5), (2, .nan), (3, 51.25)]),
                .init(name: "source \"only\"", points: [(0, 38), (1, 39), (2, 40), (3, 41)]),
                .init(name: "ocl", points: []),
            ])
    }

    func testSVGIsWellFormedWithOnePolylinePerDrawnSeriesAndTheLegend() throws {
        let svg = adaptationPlot().svg()
        let document = try parse(svg)
        XCTAssertEqual(document.rootElement()?.name, "svg")
        XCTAssertEqual(document.rootElement()?.uri, "http://www.w3.org/2000/svg")
        let polylines = try elements("polyline", in: document)
        // The empty series has a legend entry but nothing to draw.
        XCTAssertEqual(polylines.count, 2)
        XCTAssertEqual(
            polylines.map { self.attribute("stroke", of: $0) }, [LinePlot.colours[0], LinePlot.colours[1]])
        XCTAssertEqual(try texts(ofGroup: "legend", in: document), ["tent", "source \"only\"", "ocl"])
        let title = try document.nodes(forXPath: "//*[local-name()='text'][@class='title']").first?.stringValue
        XCTAssertEqual(title, "mIoU <running> & per frame")
        XCTAssertTrue(svg.contains("mIoU &lt;running&gt; &amp; per frame"))
        XCTAssertEqual(
            try document.nodes(forXPath: "//*[local-name()='text'][@class='x-label']").first?.stringValue, "frame")
        XCTAssertEqual(
            try document.nodes(forXPath: "//*[local-name()='text'][@class='y-label']").first?.stringValue, "mIoU (%)")
    }

    func testNaNPointsAreSkipped() throws {
        let document = try parse(adaptationPlot().svg())
        let points = attribute("points", of: try elements("polyline", in: document)[0]) ?? ""
        let pairs = points.split(separator: " ")
        XCTAssertEqual(pairs.count, 3)
        XCTAssertTrue(pairs.allSatisfy { $0.split(separator: ",").allSatisfy { Double($0)?.isFinite == true } }, points)
        XCTAssertFalse(adaptationPlot().svg().lowercased().contains("nan"))
    }

    func testPointsMapOntoThePlotArea() throws {
        // x 0...3 keeps its whole-number ticks (step 1); y 38...51.25 widens to 35...55 (step 5).
        let document = try parse(adaptationPlot().svg())
        let points = attribute("points", of: try elements("polyline", in: document)[1])
        let left = LinePlot.marginLeft
        let top = LinePlot.marginTop
        let (width, height) = (LinePlot.plotWidth, LinePlot.plotHeight)
        func y(_ value: Double) -> String { LinePlot.number(top + height - (value - 35) / 20 * height) }
        let expected = (0..<4).map { "\(LinePlot.number(left + Double($0) / 3 * width)),\(y(38 + Double($0)))" }
        XCTAssertEqual(points, expected.joined(separator: " "))
    }

    func testTickValuesAreRoundOneTwoFiveSteps() {
        XCTAssertEqual(LinePlot.ticks(in: 0...100), [0, 20, 40, 60, 80, 100])
        XCTAssertEqual(LinePlot.ticks(in: 0.3...9.7), [2, 4, 6, 8])
        XCTAssertEqual(LinePlot.ticks(in: -3...7), [-2, 0, 2, 4, 6])
        XCTAssertEqual(LinePlot.ticks(in: 0...233), [0, 50, 100, 150, 200])
        XCTAssertEqual(LinePlot.ticks(in: 0...0.07), [0, 0.02, 0.04, 0.06])
        let fractions = LinePlot.ticks(in: 0...1)
        XCTAssertEqual(fractions.count, 6)
        for (tick, expected) in zip(fractions, [0, 0.2, 0.4, 0.6, 0.8, 1.0]) {
            XCTAssertEqual(tick, expected, accuracy: 1e-12)
        }
        XCTAssertEqual(LinePlot.ticks(in: 0...1000, target: 10), stride(from: 0.0, through: 1000, by: 100).map { $0 })
    }

    func testAxisLabelsShowTheWidenedRoundRange() throws {
        let plot = LinePlot(
            title: "t", xLabel: "frame", yLabel: "mIoU", series: [.init(name: "a", points: [(0, 0.31), (233, 0.58)])])
        let document = try parse(plot.svg())
        XCTAssertEqual(try texts(ofGroup: "x-ticks", in: document), ["0", "50", "100", "150", "200", "250"])
        XCTAssertEqual(try texts(ofGroup: "y-ticks", in: document), ["0.3", "0.4", "0.5", "0.6"])
    }

    func testFixedYRangeKeepsItsBoundsAndClipsTheLines() throws {
        let plot = LinePlot(
            title: "t", xLabel: "x", yLabel: "y", series: [.init(name: "a", points: [(0, 50), (1, 120)])],
            yRange: 0...100)
        let svg = plot.svg()
        let document = try parse(svg)
        XCTAssertEqual(try texts(ofGroup: "y-ticks", in: document), ["0", "20", "40", "60", "80", "100"])
        XCTAssertTrue(svg.contains(#"clip-path="url(#plot-area)""#))
    }

    func testSinglePointsConstantValuesAndNoDataGiveValidCharts() throws {
        let single = LinePlot(title: "t", xLabel: "x", yLabel: "y", series: [.init(name: "a", points: [(5, 5)])])
        let document = try parse(single.svg())
        XCTAssertEqual(try elements("polyline", in: document).count, 1)
        XCTAssertEqual(try elements("circle", in: document).count, 1)
        // A constant 5 is padded to 4.5...5.5, then widened to whole steps of 0.2.
        XCTAssertEqual(
            try texts(ofGroup: "y-ticks", in: document), ["4.4", "4.6", "4.8", "5.0", "5.2", "5.4", "5.6"])

        let constant = LinePlot(
            title: "t", xLabel: "x", yLabel: "y", series: [.init(name: "a", points: [(0, 0), (1, 0), (2, 0)])])
        let constantDocument = try parse(constant.svg())
        XCTAssertEqual(try texts(ofGroup: "y-ticks", in: constantDocument), ["-1.0", "-0.5", "0.0", "0.5", "1.0"])

        for empty in [
            LinePlot(title: "t", xLabel: "x", yLabel: "y", series: []),
            LinePlot(title: "t", xLabel: "x", yLabel: "y", series: [.init(name: "a", points: [(.nan, 1), (2, .nan)])]),
        ] {
            let svg = empty.svg()
            let emptyDocument = try parse(svg)
            XCTAssertEqual(try elements("polyline", in: emptyDocument).count, 0)
            XCTAssertFalse(svg.lowercased().contains("nan"))
        }
    }

    func testSeriesPastTheColourCycleAreDashed() throws {
        let series = (0..<12).map { LinePlot.Series(name: "s\($0)", points: [(0, Double($0)), (1, 1)]) }
        let document = try parse(LinePlot(title: "t", xLabel: "x", yLabel: "y", series: series).svg())
        let polylines = try elements("polyline", in: document)
        XCTAssertEqual(polylines.count, 12)
        XCTAssertNil(attribute("stroke-dasharray", of: polylines[9]))
        XCTAssertNotNil(attribute("stroke-dasharray", of: polylines[10]))
        XCTAssertEqual(attribute("stroke", of: polylines[10]), LinePlot.colours[0])
    }

    func testOutputIsDeterministicAndWritten() throws {
        XCTAssertEqual(adaptationPlot().svg(), adaptationPlot().svg())
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lineplot-\(UUID().uuidString).svg")
        defer { try? FileManager.default.removeItem(at: url) }
        try adaptationPlot().write(to: url)
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), adaptationPlot().svg())
    }

    func testNumbersHaveAtMostTwoDecimals() {
        XCTAssertEqual(LinePlot.number(12.3456), "12.35")
        XCTAssertEqual(LinePlot.number(12.5), "12.5")
        XCTAssertEqual(LinePlot.number(40), "40")
        XCTAssertEqual(LinePlot.number(-0.001), "0")
    }
}
