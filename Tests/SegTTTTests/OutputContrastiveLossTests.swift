import SegTTT
import Torch
import XCTest

/// The exact O(N * C) negative term equals the Gram-matrix definition in value and gradient.
final class OutputContrastiveLossTests: XCTestCase {
    func testExactNegativeEqualsGramMatrixValueAndGradient() throws {
        for seed in UInt64(0)..<3 {
            let generator = try Generator(seed: seed)
            let logits = try Tensor.normal([2, 7, 9, 11], dtype: .float64, generator: generator)
            func gradient(_ negative: (Tensor) throws -> Tensor) throws -> (Double, [Double]) {
                let z = try logits.clone().requiresGrad(true)
                let value = try negative(z.softmax(dim: 1).normalize(dim: 1))
                try value.backward()
                return (try value.item(), try XCTUnwrap(z.grad).toArray(Double.self))
            }
            let (exact, exactGrad) = try gradient(OutputContrastiveLoss.exactNegative)
            let (gram, gramGrad) = try gradient { try OutputContrastiveLoss.gramNegative($0, stride: 1) }
            XCTAssertEqual(exact, gram, accuracy: 1e-12)
            for (a, b) in zip(exactGrad, gramGrad) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        }
    }

    func testPositiveTermIsMinusOneForIdenticalViews() throws {
        let view = try Tensor.normal([1, 4, 5, 6], generator: Generator(seed: 1))
        let (_, pos, neg) = try OutputContrastiveLoss()(Tensor.cat([view, view]))
        XCTAssertEqual(try pos.item(), -1, accuracy: 1e-6)
        XCTAssertGreaterThan(try neg.item(), 0)
    }
}
