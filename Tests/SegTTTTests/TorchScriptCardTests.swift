import Foundation
import SegTTT
import TestSupport
import Torch
import XCTest

/// Model card files: every key read, every mistake one line naming the key and an example.
final class TorchScriptCardTests: ConfiguredTestCase {
    let full = """
        name: net
        classes: [road, car]
        no_class_outputs: [void]
        input:
          channel_order: BGR
          scale: 0.5
          mean: [1, 2, 3.5]
          std: [4, 5, 6]
        output: out
        logits_resolution: lower
        upsample: {mode: bilinear, align_corners: true}
        head: [decode_head.conv_seg]
        side_multiple: 32
        """

    func testEveryKeyIsRead() throws {
        let card = try TorchScriptCard.parse(full, file: "net.yaml")
        XCTAssertEqual(card.card.name, "net")
        XCTAssertEqual(card.card.classNames, ["road", "car"])
        XCTAssertEqual(card.card.numOutputs, 3)
        XCTAssertEqual(
            card.card.normalization, InputNormalization(channelOrder: .bgr, mean: [1, 2, 3.5], std: [4, 5, 6], scale: 0.5))
        XCTAssertEqual(card.output, .key("out"))
        XCTAssertEqual(card.upsampling, .bilinear(alignCorners: true))
        XCTAssertEqual(card.headModules, ["decode_head.conv_seg"])
        XCTAssertEqual(card.sideMultiple, 32)
    }

    func testJSONAndDefaults() throws {
        let card = try TorchScriptCard.parse(
            #"{"classes": ["a", "b"], "input": {"channel_order": "RGB", "mean": [0, 0, 0]}, "output": 1}"#,
            file: "net.json", defaultName: "net")
        XCTAssertEqual(card.card.name, "net")
        XCTAssertEqual(card.card.numOutputs, 2)
        XCTAssertEqual(card.card.normalization.std, [1, 1, 1])
        XCTAssertEqual(card.card.normalization.scale, 1)
        XCTAssertEqual(card.output, .element(1))
        XCTAssertNil(card.upsampling)
        XCTAssertEqual(card.sideMultiple, 1)
        XCTAssertEqual(try TorchScriptCard.parse("classes: [a]\ninput: {channel_order: RGB, mean: [0, 0, 0]}\noutput: tensor", file: "f").output, .tensor)
    }

    func testMistakesNameTheKeyAndAnExample() {
        let input = "input: {channel_order: RGB, mean: [0, 0, 0]}"
        let cases: [(String, String)] = [
            (input, "classes is missing"),
            ("classes: [a]", "input is missing"),
            ("classes: [a, a]\n" + input, "classes names 'a' twice"),
            ("classes: a\n" + input, "classes is not a list"),
            ("classes: [a]\ninput: {channel_order: RGB, mean: [0, 0]}", "input.mean must be 3 numbers"),
            ("classes: [a]\ninput: {channel_order: HSV, mean: [0, 0, 0]}", "input.channel_order must be RGB or BGR"),
            ("classes: [a]\ninput: {channel_order: RGB, mean: [0, 0, 0], std: [1, 0, 1]}", "input.std must be positive"),
            ("classes: [a]\ninput: {channel_order: RGB, mean: [0, 0, 0], gamma: 2}", "input.gamma is not a key of input"),
            ("classes: [a]\n" + input + "\nclasess: [b]", "clasess is not a card key"),
            ("classes: [a]\n" + input + "\noutputs: 3", "outputs is 3, but classes and no_class_outputs name 1"),
            ("classes: [a]\n" + input + "\nlogits_resolution: half", "logits_resolution must be input or lower"),
            ("classes: [a]\n" + input + "\nlogits_resolution: lower\nupsample: {mode: cubic}", "upsample.mode must be bilinear or nearest"),
            ("classes: [a]\n" + input + "\nside_multiple: 0", "side_multiple is 0, outside 1...1024"),
            ("classes: [a]\n" + input + "\noutput: -1", "output is a negative element index"),
            ("- a\n- b", "the file holds no mapping of keys"),
            ("classes: [a\n", "the file is neither YAML nor JSON"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try TorchScriptCard.parse(text, file: "my.yaml"), expected) { error in
                let message = "\(error)"
                XCTAssertTrue(message.hasPrefix("model card my.yaml: "), message)
                XCTAssertTrue(message.contains(expected), "\(message) lacks \(expected)")
                XCTAssertTrue(message.contains("write e.g. "), message)
                XCTAssertFalse(message.contains("\n"), "one line: \(message)")
            }
        }
    }

    func testTheTemplateParsesBack() throws {
        let text = TorchScriptCard.template(name: "x", outputs: 3, output: .key("out"), lowerResolution: true)
        let card = try TorchScriptCard.parse(text, file: "template")
        XCTAssertEqual(card.card.classNames, ["class0", "class1", "class2"])
        XCTAssertEqual(card.output, .key("out"))
        XCTAssertEqual(card.upsampling, .bilinear(alignCorners: false))
    }

    func testTheCardBesideAModelIsFound() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("segttt-cards-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = folder.appendingPathComponent("net.pt")
        XCTAssertNil(TorchScriptCard.file(beside: model))
        try Data().write(to: folder.appendingPathComponent("net.pt.json"))
        XCTAssertEqual(TorchScriptCard.file(beside: model)?.lastPathComponent, "net.pt.json")
        try Data().write(to: folder.appendingPathComponent("net.yaml"))
        XCTAssertEqual(TorchScriptCard.file(beside: model)?.lastPathComponent, "net.yaml")
    }
}
