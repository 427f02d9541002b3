import Foundation
import SegTTT
import Torch
import TorchNN
import XCTest

/// The network of Scripts/fixtures/adaptation.py, layer for layer and name for name.
final class TinySegNet: Module, SegmentationModel {
    let conv1: Conv2d
    let bn1: BatchNorm2d
    let conv2: Conv2d
    let bn2: BatchNorm2d
    let classifier: Conv2d
    let card: ModelCard
    let headModuleNames = ["classifier"]

    /// - Parameter taskClasses: the classes of the task named on the card (default: every
    ///   output); outputs beyond them stand for a background or void output.
    init(classes: Int = 5, taskClasses: Int? = nil, generator: Generator? = nil) throws {
        conv1 = try Conv2d(3, 8, kernelSize: 3, stride: 2, padding: 1, bias: false, generator: generator)
        bn1 = try BatchNorm2d(8)
        conv2 = try Conv2d(8, 8, kernelSize: 3, padding: 2, dilation: 2, bias: false, generator: generator)
        bn2 = try BatchNorm2d(8)
        classifier = try Conv2d(8, classes, kernelSize: 1, generator: generator)
        card = ModelCard(
            name: "tiny", classNames: (0..<(taskClasses ?? classes)).map { "c\($0)" }, numOutputs: classes,
            normalization: InputNormalization(channelOrder: .rgb, mean: [0, 0, 0]))
        super.init()
        register("conv1", conv1)
        register("bn1", bn1)
        register("conv2", conv2)
        register("bn2", bn2)
        register("classifier", classifier)
    }

    func logits(_ x: Tensor) throws -> Tensor {
        try classifierFeatures(x)!.logits
    }

    func classifierFeatures(_ x: Tensor) throws -> (features: Tensor, logits: Tensor)? {
        let y = try bn2(conv2(bn1(conv1(x)).relu())).relu()
        return (y, try interpolate(classifier(y), size: Pair(x.shape[2], x.shape[3]), mode: .bilinear(alignCorners: true)))
    }
}

/// Reads a safetensors fixture of this test target.
func segTTTFixture(_ name: String) throws -> StateDict {
    let url = try XCTUnwrap(
        Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures"))
    return try SafeTensors.read(url).tensors
}

/// Asserts equal shapes and |a - b| <= atol + rtol * |b| everywhere, naming the first bad element.
func assertTensorsClose(
    _ actual: Tensor?, _ expected: Tensor?, rtol: Double = 1e-5, atol: Double = 1e-7, _ label: String,
    file: StaticString = #filePath, line: UInt = #line
) throws {
    guard let actual, let expected else { return XCTFail("\(label): missing tensor", file: file, line: line) }
    XCTAssertEqual(actual.shape, expected.shape, "\(label): shape", file: file, line: line)
    guard actual.shape == expected.shape else { return }
    let a = try actual.toArray(Double.self)
    let b = try expected.toArray(Double.self)
    for i in a.indices where Swift.abs(a[i] - b[i]) > atol + rtol * Swift.abs(b[i]) {
        return XCTFail("\(label): element \(i) is \(a[i]), expected \(b[i])", file: file, line: line)
    }
}

/// The fixture network with the weights a fixture file holds under "init.".
func tinySegNet(from fixture: StateDict) throws -> TinySegNet {
    let net = try TinySegNet()
    try net.load(StateDict(fixture.filter { $0.name.hasPrefix("init.") }.map { (String($0.name.dropFirst(5)), $0.tensor) }))
    return net
}

/// The two frames a fixture file holds as "frame0" and "frame1".
func fixtureFrames(_ fixture: StateDict) throws -> [Tensor] {
    [try XCTUnwrap(fixture["frame0"]), try XCTUnwrap(fixture["frame1"])]
}
