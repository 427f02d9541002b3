import Foundation
import SegTTT
import TestSupport
import Torch
import TorchNN
import XCTest

/// The released ESPNet checkpoints exported to TorchScript by SegTTT's own PyTorch definition
/// (Scripts/export_espnet_torchscript.py, scripted and traced, into a temporary folder) adapt
/// as the native network does, on a few CamVid frames: the same logits, the same BN-prior
/// logits, the same first OCL step. The whole-stream figures are in docs/TORCHSCRIPT.md.
final class TorchScriptESPNetTests: ConfiguredTestCase {
    static let data = TorchvisionModelTests.repository.appendingPathComponent("../shared/data").standardized
    static let folder = FileManager.default.temporaryDirectory.appendingPathComponent("segttt-espnet-ts-\(getpid())")
    nonisolated(unsafe) static var exported: Result<URL, Error>?

    func exports() throws -> URL {
        guard FileManager.default.fileExists(atPath: Self.data.appendingPathComponent("camvid").path) else {
            throw XCTSkip("\(Self.data.path) is absent: the CamVid test split and ESPNet weights live there")
        }
        if Self.exported == nil {
            Self.exported = Result {
                try runFixtureScript(
                    TorchvisionModelTests.repository.appendingPathComponent("Scripts/export_espnet_torchscript.py"),
                    arguments: [Self.folder.path, Self.data.path, "espnet_p_2_q_8_camvid.pth"], needs: "torch")
                return Self.folder
            }
        }
        return try Self.exported!.get()
    }

    override class func tearDown() {
        try? FileManager.default.removeItem(at: folder)
        super.tearDown()
    }

    func frames(_ count: Int) throws -> [Tensor] {
        let dataset = try CamVid(root: Self.data.appendingPathComponent("camvid"))
        let native = try ESPNetFamily().load(checkpoint, cardFile: nil)
        return try (0..<count).map { try native.card.normalization.apply(dataset.sample(at: $0 * 40).image) }
    }

    var checkpoint: URL { Self.data.appendingPathComponent("weights/espnet/espnet_p_2_q_8_camvid.pth") }

    func models() throws -> [(String, any SegmentationModel)] {
        let folder = try exports()
        return try ["scripted", "traced"].map { kind in
            (kind, try TorchScriptFamily().load(folder.appendingPathComponent("espnet_p_2_q_8_camvid.\(kind).pt"), cardFile: nil))
        }
    }

    func testSourceAndBNPriorLogitsEqualTheNativeNetwork() throws {
        let models = try models()
        let native = try ESPNetFamily().load(checkpoint, cardFile: nil)
        // The file's order is PyTorch's; the native network registers some modules in
        // another order. The names are the same.
        XCTAssertEqual(Set(models[0].1.stateDict().names), Set(native.stateDict().names))
        for x in try frames(2) {
            for prior in [false, true] {
                func method(_ model: any SegmentationModel) throws -> any TestTimeMethod {
                    prior ? try BatchNormAdaptation(model: model) : try SourceOnly(model: model)
                }
                let expected = try method(native).process(x).scores
                let scale = try expected.abs().reshape([-1]).max(dim: 0).values.item()
                for (kind, model) in models {
                    try assertTensorsClose(
                        method(model).process(x).scores, expected, rtol: 0, atol: 1e-4 * scale, "\(kind) prior \(prior)")
                }
            }
        }
    }

    /// With its convolutions through SegTTT's `conv2d` and its BatchNorm + PReLU pairs through
    /// the fused kernel, the export computes what the native network computes, to the bit: OCL
    /// steps, which amplify any difference from frame to frame, stay equal.
    func testOCLStepsEqualTheNativeOnesToTheBit() throws {
        var config = AdaptationConfig.defaults(for: .ocl, preset: .published)
        config.maskRatio = 0
        let frames = try frames(2)
        let nativeModel = try ESPNetFamily().load(checkpoint, cardFile: nil)
        let native = try OCL(model: nativeModel, config: config)
        let expected = try frames.map { try native.process($0).losses }
        for (kind, model) in try models() {
            let method = try OCL(model: model, config: config)
            for (i, frame) in frames.enumerated() {
                let losses = try method.process(frame).losses
                for term in ["loss", "pos", "neg"] {
                    XCTAssertEqual(losses[term], expected[i][term], "\(kind) frame \(i) \(term)")
                }
            }
            let state = model.stateDict()
            for (name, tensor) in nativeModel.stateDict() {
                try assertTensorsClose(state[name], tensor, rtol: 0, atol: 0, "\(kind) \(name)")
            }
        }
    }

    func testTheExportsConvolutionsTakeSegTTTsKernels() throws {
        let x = try Tensor.uniform([1, 3, 64, 96], low: -1, high: 1, generator: Generator(seed: 0))
        for (kind, model) in try models() {
            let script = try XCTUnwrap(model as? TorchScriptModel)
            XCTAssertGreaterThan(script.convolutionCalls, 40, kind)
            let (_, operators) = try OperatorTime.profile { try withNoGrad { try model.logits(x) } }
            let names = Set(operators.map(\.name))
            XCTAssertTrue(names.contains("segttt::dilated_conv3x3"), "\(kind): \(names.sorted())")
            XCTAssertTrue(names.contains("segttt::conv_transpose2x2"), "\(kind): \(names.sorted())")
        }
    }

    func testAKITTISizedFrameRunsOnEveryModel() throws {
        // 1241x376 stopped inside ESPNet's concatenations before frames were padded.
        let x = try Tensor.uniform([1, 3, 376, 1241], low: -1, high: 1, generator: Generator(seed: 0))
        let native = try ESPNetFamily().load(checkpoint, cardFile: nil)
        for model in try [native] + models().map(\.1) {
            XCTAssertEqual(try withNoGrad { try model.logits(x) }.shape, [1, 12, 376, 1241])
        }
    }
}
