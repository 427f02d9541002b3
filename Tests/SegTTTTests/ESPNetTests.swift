import Foundation
import SegTTT
import TestSupport
import Torch
import TorchNN
import XCTest

/// ESPNet against an independent PyTorch definition (Scripts/fixtures/espnet.py) on the four
/// released checkpoints, and the checkpoint-shape inference.
final class ESPNetTests: ConfiguredTestCase {
    private var weights: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
                "shared/data/weights/espnet")
    }

    private func checkpoint(_ name: String) throws -> URL {
        let url = weights.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw XCTSkip("\(url.path) is absent: the ESPNet checkpoints live in ../shared/data")
        }
        return url
    }

    func testLogitsMatchPyTorchForEveryReleasedCheckpoint() throws {
        let fixtureURL = try XCTUnwrap(
            Bundle.module.url(forResource: "espnet", withExtension: "safetensors", subdirectory: "Fixtures"))
        let fixture = try SafeTensors.read(fixtureURL).tensors
        for name in ["espnet_p_2_q_3.pth", "espnet_p_2_q_5.pth", "espnet_p_2_q_8.pth", "espnet_p_2_q_8_camvid.pth"] {
            let model = try ESPNet.load(try checkpoint(name))
            let input = try XCTUnwrap(fixture[name + ".input"])
            let expected = try XCTUnwrap(fixture[name + ".logits"])
            let logits = try withNoGrad { try model.logits(input) }
            XCTAssertEqual(logits.shape, expected.shape, name)
            let difference = try (logits - expected).abs().amax().item()
            let scale = try expected.abs().amax().item()
            XCTAssertLessThan(difference, 1e-4 * scale, "\(name): max |difference| \(difference) at scale \(scale)")
        }
    }

    func testCheckpointShapesDecideOutputsBlocksAndSkip() throws {
        let cityscapes = try ESPNet.load(try checkpoint("espnet_p_2_q_8.pth"))
        XCTAssertEqual(cityscapes.card.numOutputs, 20)
        XCTAssertEqual(cityscapes.card.classNames.count, 19)
        XCTAssertEqual(cityscapes.skip, .level1)
        XCTAssertEqual([cityscapes.p, cityscapes.q], [2, 8])
        let camVid = try ESPNet.load(try checkpoint("espnet_p_2_q_8_camvid.pth"))
        XCTAssertEqual(camVid.card.numOutputs, 12)
        XCTAssertEqual(camVid.card.classNames.first, "Sky")
        XCTAssertEqual(camVid.skip, .level1WithImage)
        XCTAssertEqual(camVid.card.normalization.mean, [110.3, 108.4, 105.0])
        XCTAssertEqual(try ESPNet.load(try checkpoint("espnet_p_2_q_3.pth")).q, 3)
        XCTAssertEqual(try ESPNet.load(try checkpoint("espnet_p_2_q_5.pth")).q, 5)
    }

    func testFreshNetworkKeepsSidesThatAreMultiplesOfEight() throws {
        let model = try ESPNet(outputs: 5, p: 1, q: 1, generator: Generator(seed: 0))
        model.eval()
        let logits = try withNoGrad { try model.logits(Tensor.normal([2, 3, 24, 40], generator: Generator(seed: 1))) }
        XCTAssertEqual(logits.shape, [2, 5, 24, 40])
        // One regular block: c1, d1...d16, bn.bn (4 tensors + num_batches_tracked), bn.act.
        XCTAssertEqual(model.stateDict().names.filter { $0.hasPrefix("encoder.level3.") }.count, 12)
    }

    /// Sizes that make no network are refused with the sizes, not trapped on (p, q of 0 are a network).
    func testSizesThatMakeNoNetworkAreRefused() throws {
        for (outputs, p, q) in [(5, 1, -1), (5, -2, 1), (0, 1, 1)] {
            XCTAssertThrowsError(try ESPNet(outputs: outputs, p: p, q: q)) {
                XCTAssertTrue("\($0)".contains("outputs \(outputs), p \(p), q \(q)"), "\($0)")
            }
        }
        XCTAssertNoThrow(try ESPNet(outputs: 5, p: 0, q: 0, generator: Generator(seed: 0)))
    }

    func testParameterRoles() throws {
        let model = try ESPNet(outputs: 12, p: 2, q: 3, skip: .level1WithImage, generator: Generator(seed: 0))
        let all = model.parameters(for: .all)
        let affine = model.parameters(for: .batchNormAffine)
        let head = model.parameters(for: .head)
        XCTAssertEqual(all.count, model.namedParameters().count)
        XCTAssertEqual(affine.count, 2 * model.batchNormLayers.count)
        XCTAssertEqual(head.count, 1)
        XCTAssertTrue(head[0] === model.namedParameters().first { $0.name == "classifier.weight" }?.parameter)
    }

    func testAForeignCheckpointIsRefusedWithItsPath() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("not-espnet-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try SafeTensors.write(StateDict([("layer1.weight", try Tensor.zeros([2, 2]))]), to: url)
        XCTAssertThrowsError(try ESPNet.load(url)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(url.path) && text.contains("not an ESPNet checkpoint"), text)
        }
    }

    func testNormalizationFromTheCard() throws {
        let card = try ESPNet(outputs: 12, p: 1, q: 1).card
        let image = try Tensor([UInt8](repeating: 0, count: 3) + [UInt8](repeating: 255, count: 3), shape: [3, 1, 2])
        let x = try card.normalization.apply(image).toArray(Float.self)
        // Channel 0 of the input is BGR's B = the image's third (R->B swap): all 255.
        XCTAssertEqual(x[0], Float((255 - 110.3) / 72.1 / 255), accuracy: 1e-6)
        XCTAssertEqual(x[4], Float((0 - 105.0) / 69.9 / 255), accuracy: 1e-6)
    }
}
