import Foundation
import SegTTT
import TestSupport
import XCTest

@testable import SegTTTTool

/// `--model torchscript` and `segttt info` on a TorchScript file: the tiny fixture network
/// of the SegTTT tests, with a card of the synthetic streets' first five classes.
final class TorchScriptToolTests: ConfiguredTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("SegTTTTests/Fixtures")

    /// A copy of the traced tiny network in a fresh folder, with a card beside it (or none).
    func model(card: Bool = true) throws -> (model: URL, classMap: URL) {
        let folder = try temporaryFolder(self)
        let model = folder.appendingPathComponent("tiny.pt")
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("tiny.traced.pt"), to: model)
        let classes = Array(SyntheticStreets.classes.prefix(5))
        if card {
            try """
            classes: [\(classes.joined(separator: ", "))]
            input: {channel_order: RGB, scale: 0.0039, mean: [120, 120, 120], std: [60, 60, 60]}
            side_multiple: 4
            """.write(to: folder.appendingPathComponent("tiny.yaml"), atomically: true, encoding: .utf8)
        }
        let map = folder.appendingPathComponent("map.json")
        let pairs = classes.map { "\"\($0)\": \"\($0)\"" }.joined(separator: ", ")
        try "{\(pairs)}".write(to: map, atomically: true, encoding: .utf8)
        return (model, map)
    }

    func arguments(_ files: (model: URL, classMap: URL), method: String, output: URL, frames: Int = 4) -> [String] {
        [
            "adapt", "--model", "torchscript", "--checkpoint", files.model.path, "--class-map", files.classMap.path,
            "--dataset", "synthetic:dusk:\(frames)", "--method", method, "--threads", "1", "--no-predictions",
            "--output", output.path,
        ]
    }

    func testEveryMethodRunsAndWritesTheCardIntoTheConfiguration() throws {
        let files = try model()
        let folder = try temporaryFolder(self)
        for method in Methods.all.map(\.name) {
            let output = folder.appendingPathComponent(method)
            let error = runTool(arguments(files, method: method, output: output))
            if method == MethodName.diga.rawValue {
                // A TorchScript file does not expose the classifier's features prototypes need.
                XCTAssertTrue(report(error).message.contains("does not expose them"), report(error).message)
                continue
            }
            XCTAssertNil(error, method)
            let metrics = try RunMetrics.read(output.appendingPathComponent("metrics.json"))
            XCTAssertEqual(metrics.frames, 4, method)
            XCTAssertEqual(metrics.model, "tiny", method)
            let written = try RunConfiguration(RunConfiguration.read(output.appendingPathComponent("config.json")))
            XCTAssertEqual(written.settings.model, "torchscript")
            XCTAssertNil(written.settings.card, "the card beside the file is not named by --card")
        }
    }

    func testAnInterruptedRunResumesToTheNumbersOfAStraightOne() throws {
        let files = try model()
        let folder = try temporaryFolder(self)
        let straight = folder.appendingPathComponent("straight")
        XCTAssertNil(runTool(arguments(files, method: "ocl", output: straight) + ["--lr", "0.01"]))
        let resumed = folder.appendingPathComponent("resumed")
        XCTAssertNil(runTool(arguments(files, method: "ocl", output: resumed) + ["--lr", "0.01", "--limit", "2", "--save-every", "1"]))
        XCTAssertNil(runTool(arguments(files, method: "ocl", output: resumed) + ["--lr", "0.01", "--resume"]))
        let a = try RunMetrics.read(straight.appendingPathComponent("metrics.json"))
        let b = try RunMetrics.read(resumed.appendingPathComponent("metrics.json"))
        XCTAssertEqual(b.frames, 4)
        XCTAssertEqual(a.confusionMatrix, b.confusionMatrix)
    }

    func testAMissingCardAndAWrongFamilyAreOneLineEach() throws {
        let files = try model(card: false)
        let output = try temporaryFolder(self).appendingPathComponent("run")
        var (message, code) = report(runTool(arguments(files, method: "source", output: output)))
        XCTAssertEqual(code, 1)
        XCTAssertTrue(message.contains("has no model card beside it (tiny.yaml or tiny.json)"), message)
        XCTAssertTrue(message.contains("--card"), message)

        (message, code) = report(runTool(arguments(files, method: "source", output: output) + ["--card", "/nonexistent.yaml"]))
        XCTAssertEqual(code, 1)
        XCTAssertTrue(message.contains("--card /nonexistent.yaml: no such file"), message)

        let espnet = arguments(files, method: "source", output: output).map { $0 == "torchscript" ? "espnet" : $0 }
        (message, code) = report(runTool(espnet + ["--card", files.classMap.path]))
        XCTAssertEqual(code, 1)
        XCTAssertTrue(message.contains("torchscript models only"), message)

        (message, code) = report(runTool(espnet.map { $0 == "espnet" ? "nosuch" : $0 }))
        XCTAssertTrue(message.contains("espnet, deeplabv2, torchscript"), message)
    }

    func testInfoDescribesTheFileAndPrintsACardToFillIn() throws {
        let files = try model(card: false)
        let text = try TorchScriptInfo(files.model).report(listingTensors: true)
        for expected in [
            "format:     TorchScript, traced", "forward(", "869 numbers in 8 tensors; 6 buffers",
            "batchnorm:  2 layers that methods adapt (2 calls in the graph)",
            "output:     tensor [1, 5, 256, 256] for an input [1, 3, 256, 256]", "save it as tiny.yaml",
            "classes: [class0, class1, class2, class3, class4]", "bn2.running_var",
        ] {
            XCTAssertTrue(text.contains(expected), "missing \(expected) in\n\(text)")
        }
        let scripted = try TorchScriptInfo(Self.fixtures.appendingPathComponent("tiny.scripted.pt")).report(listingTensors: false)
        XCTAssertTrue(scripted.contains("scripted (its code reads the modules' training flag)"), scripted)
        XCTAssertTrue(scripted.contains("card:       "), scripted)
        XCTAssertNil(runTool(["info", files.model.path]))
    }
}
