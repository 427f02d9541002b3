import Foundation
import Torch
import TorchNN
import XCTest

/// Loads a safetensors fixture of this test target.
func loadFixture(_ name: String) throws -> StateDict {
    guard let url = Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures") else {
        throw XCTSkip("fixture \(name).safetensors is missing: run /usr/bin/python3 Scripts/fixtures/nn.py")
    }
    return try SafeTensors.read(url).tensors
}

/// Asserts equal shapes and |a - b| <= atol + rtol * |b| everywhere, naming the first bad index.
func assertClose(
    _ actual: Tensor?, _ expected: Tensor?, rtol: Double = 1e-5, atol: Double = 1e-6, _ label: String = "",
    file: StaticString = #filePath, line: UInt = #line
) throws {
    guard let actual, let expected else {
        return XCTFail("\(label): missing tensor", file: file, line: line)
    }
    XCTAssertEqual(actual.shape, expected.shape, "\(label): shape", file: file, line: line)
    guard actual.shape == expected.shape else { return }
    let a = try actual.toArray(Double.self)
    let b = try expected.toArray(Double.self)
    for i in a.indices where Swift.abs(a[i] - b[i]) > atol + rtol * Swift.abs(b[i]) {
        return XCTFail("\(label): element \(i) is \(a[i]), expected \(b[i])", file: file, line: line)
    }
}
