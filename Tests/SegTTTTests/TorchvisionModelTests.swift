import Foundation
import SegTTT
import TestSupport
import Torch
import TorchNN
import XCTest

/// Networks of other shapes through the TorchScript path: torchvision's segmentation models
/// with seeded random weights, scripted, with dict outputs, logits below the input's
/// resolution, and frozen and unfrozen BatchNorm (Scripts/fixtures/torchvision_models.py,
/// run into a temporary folder: the files are too large to commit). Logits, one OCL step and
/// one TENT step must equal eager PyTorch's.
final class TorchvisionModelTests: ConfiguredTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let folder = FileManager.default.temporaryDirectory.appendingPathComponent("segttt-torchvision-\(getpid())")
    nonisolated(unsafe) static var generated: Result<URL, Error>?

    /// Runs the fixture script once per test process.
    func models() throws -> URL {
        if Self.generated == nil {
            Self.generated = Result {
                try runFixtureScript(
                    Self.repository.appendingPathComponent("Scripts/fixtures/torchvision_models.py"),
                    arguments: [Self.folder.path], needs: "torchvision")
                return Self.folder
            }
        }
        return try Self.generated!.get()
    }

    override class func tearDown() {
        try? FileManager.default.removeItem(at: folder)
        super.tearDown()
    }

    func load(_ name: String) throws -> (TorchScriptModel, StateDict) {
        let folder = try models()
        let model = try TorchScriptFamily().load(folder.appendingPathComponent(name + ".pt"), cardFile: nil)
        let expected = try SafeTensors.read(folder.appendingPathComponent(name + ".safetensors")).tensors
        return (try XCTUnwrap(model as? TorchScriptModel), expected)
    }

    func check(_ name: String, tent: Bool) throws {
        var (model, expected) = try load(name)
        let x = try XCTUnwrap(expected["input"])
        let reference = try XCTUnwrap(expected["logits"])
        let scale = try reference.abs().reshape([-1]).max(dim: 0).values.item()
        try assertTensorsClose(
            withNoGrad { try model.logits(x) }, reference, rtol: 0, atol: 1e-4 * scale, "\(name) logits")

        var config = AdaptationConfig.defaults(for: .ocl)
        config.learningRate = 0.01
        config.maskRatio = 0
        let ocl = try OCL(model: model, config: config)
        let step = try ocl.process(x)
        for term in ["loss", "pos", "neg"] {
            let value = try XCTUnwrap(expected["ocl.\(term)"]).item()
            XCTAssertEqual(step.losses[term] ?? .nan, value, accuracy: 1e-5 * Swift.max(1, Swift.abs(value)), "\(name) \(term)")
        }
        var compared = 0
        // The step runs back through up to 50 layers whose sums libtorch and PyTorch order
        // differently: ResNet-50's updated weights agree to 2e-6 where they are near 0.
        for (key, parameter) in model.namedParameters() where parameter.isTrainable {
            try assertTensorsClose(parameter.value, expected["ocl.\(key)"], rtol: 1e-4, atol: 1e-5, "\(name) OCL \(key)")
            compared += 1
        }
        XCTAssertGreaterThan(compared, 10, name)

        guard tent else { return }
        (model, expected) = try load(name)
        var tentConfig = AdaptationConfig.defaults(for: .tent)
        tentConfig.optimizer = .sgd
        tentConfig.learningRate = 0.1
        tentConfig.momentum = 0.9
        tentConfig.weightDecay = 0
        let method = try Tent(model: model, config: tentConfig)
        let entropy = try XCTUnwrap(expected["tent.entropy"]).item()
        XCTAssertEqual(try method.process(x).losses["entropy"] ?? .nan, entropy, accuracy: 1e-5 * entropy, name)
        let layers = model.namedModules().filter { $0.module is BatchNorm2d }
        XCTAssertFalse(layers.isEmpty)
        for (path, layer) in layers {
            let bn = try XCTUnwrap(layer as? BatchNorm2d)
            try assertTensorsClose(bn.weight?.value, expected["tent.\(path).weight"], rtol: 1e-4, atol: 1e-6, "\(name) TENT \(path)")
            try assertTensorsClose(bn.bias?.value, expected["tent.\(path).bias"], rtol: 1e-4, atol: 1e-6, "\(name) TENT \(path)")
        }
    }

    func testLRASPPWithADictOutput() throws {
        try check("lraspp", tent: true)
    }

    func testDeepLabV3WithLogitsAtASixteenthOfTheInput() throws {
        try check("deeplabv3_lowres", tent: false)
    }

    func testFCNWithAFrozenBatchNormBackbone() throws {
        try check("fcn_frozen", tent: true)
        let (model, _) = try load("fcn_frozen")
        // FrozenBatchNorm2d holds buffers only and calls no batch_norm: the head's one
        // BatchNorm2d is all that methods adapt; the backbone's statistics stay fixed.
        XCTAssertEqual(model.batchNormLayers.count, 1)
        XCTAssertEqual(model.unredirectedBatchNormCalls, 0)
    }
}

/// Runs a fixture script with Debian's python3 and `arguments`; skips the test when that
/// Python lacks the module `needs`, fails with the script's output when it fails.
func runFixtureScript(_ script: URL, arguments: [String], needs module: String) throws {
    let python = "/usr/bin/python3"
    let probe = Process()
    probe.executableURL = URL(fileURLWithPath: python)
    probe.arguments = ["-c", "import torch, \(module)"]
    probe.standardError = FileHandle.nullDevice
    guard FileManager.default.isExecutableFile(atPath: python), (try? probe.run()) != nil else {
        throw XCTSkip("\(python) is absent: it runs \(script.lastPathComponent) (bash Scripts/setup.sh installs it)")
    }
    probe.waitUntilExit()
    guard probe.terminationStatus == 0 else {
        throw XCTSkip("\(python) cannot import torch and \(module): bash Scripts/setup.sh installs them")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = [script.path] + arguments
    process.currentDirectoryURL = script.deletingLastPathComponent()
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw TorchError("\(script.lastPathComponent) failed: \(String(decoding: output.suffix(2000), as: UTF8.self))")
    }
}
