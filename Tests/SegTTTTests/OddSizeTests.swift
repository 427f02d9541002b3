import Foundation
import SegTTT
import TestSupport
import Torch
import XCTest

/// Frames of any size run on every native model: ESPNet pads them to multiples of 8 and
/// crops its logits back; DeepLabV2 brings its logits to the input's size itself. (The
/// TorchScript path pads to its card's multiple: TorchScriptModelTests, TorchScriptESPNetTests.)
final class OddSizeTests: ConfiguredTestCase {
    let sizes = [(37, 53), (45, 61), (376, 1241 / 4)]

    func testESPNetTakesAnySize() throws {
        let model = try ESPNet(outputs: 6, p: 1, q: 1, generator: Generator(seed: 0))
        model.eval()
        for (height, width) in sizes {
            let x = try Tensor.normal([1, 3, height, width], generator: Generator(seed: 1))
            XCTAssertEqual(try withNoGrad { try model.logits(x) }.shape, [1, 6, height, width])
        }
    }

    func testDeepLabV2TakesAnySize() throws {
        let model = try DeepLabV2(.init(backbone: .resnet18, numClasses: 4), generator: Generator(seed: 0))
        model.eval()
        for (height, width) in sizes.prefix(2) {
            let x = try Tensor.normal([1, 3, height, width], generator: Generator(seed: 1))
            XCTAssertEqual(try withNoGrad { try model.logits(x) }.shape, [1, 4, height, width])
        }
    }
}
