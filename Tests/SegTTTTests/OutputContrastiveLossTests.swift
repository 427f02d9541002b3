import SegTTT
import SegTTTKernels
import TestSupport
import Torch
import XCTest

/// The exact O(N * C) negative term equals the Gram-matrix definition in value and gradient,
/// and the fused kernel equals the loss composed from libtorch's ops.
final class OutputContrastiveLossTests: ConfiguredTestCase {
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

    /// Value and gradient of the fused kernel on float32 logits against the composed loss in
    /// float64, through `loss` and through pos and neg with their own weights; the shapes
    /// cover one partial tile, many chunks with a partial last tile, and one channel, and the
    /// last logits lie so far apart that shifted ones fall below -87, where the kernel's
    /// exponential stops at 1.6e-38.
    func testFusedKernelMatchesComposedLossInValueAndGradient() throws {
        let loss = OutputContrastiveLoss(posCoeff: 3, negCoeff: 1)
        let cases: [(shape: [Int], spread: Double)] = [
            ([2, 5, 7, 9], 3), ([2, 19, 33, 70], 3), ([2, 1, 3, 4], 3), ([2, 6, 5, 8], 60),
        ]
        for (seed, (shape, spread)) in cases.enumerated() {
            let logits = try Tensor.normal(shape, generator: Generator(seed: UInt64(seed))) * spread
            typealias Terms = (loss: Tensor, pos: Tensor, neg: Tensor)
            for objective in [{ (t: Terms) in t.loss }, { (t: Terms) in try 0.7 * t.pos + 1.3 * t.neg }] {
                let fusedInput = try logits.clone().requiresGrad(true)
                let fused = try Kernels.outputContrastiveLoss(fusedInput, posCoeff: 3, negCoeff: 1)
                let referenceInput = try logits.to(.float64).requiresGrad(true)
                let reference = try loss.composed(referenceInput)
                for (a, b) in [(fused.loss, reference.loss), (fused.pos, reference.pos), (fused.neg, reference.neg)] {
                    XCTAssertEqual(try a.item(), try b.item(), accuracy: 1e-6 * Swift.max(1, Swift.abs(try b.item())))
                }
                try objective(fused).backward()
                try objective(reference).backward()
                let expected = try XCTUnwrap(referenceInput.grad)
                let scale = try expected.abs().amax().item()
                try assertTensorsClose(
                    fusedInput.grad, expected, rtol: 1e-4, atol: 1e-5 * scale, "gradient, shape \(shape)")
            }
        }
    }

    /// The reductions use a fixed partition of the pixels, so the value and the gradient are
    /// the same bits on one thread as on two (each thread then takes half of the chunks); and
    /// the kernel does run on two.
    func testFusedKernelGivesTheSameBitsOnOneAndTwoThreads() throws {
        let logits = try Tensor.normal([2, 19, 64, 96], generator: Generator(seed: 5)) * 3.0
        let original = Runtime.numThreads
        defer { Runtime.numThreads = original }
        var results: [(value: Double, gradient: [Float])] = []
        for threads in [1, 2] {
            Runtime.numThreads = threads
            let z = try logits.clone().requiresGrad(true)
            var loss: Tensor?
            let used = try Kernels.threadsUsed {
                loss = try Kernels.outputContrastiveLoss(z, posCoeff: 3, negCoeff: 1).loss
                try loss?.backward()
            }
            XCTAssertEqual(used, threads, "forward and backward on \(threads) thread(s)")
            results.append((try XCTUnwrap(loss).item(), try XCTUnwrap(z.grad).toArray(Float.self)))
        }
        XCTAssertEqual(results[0].value, results[1].value)
        XCTAssertTrue(results[0].gradient == results[1].gradient, "gradients differ between 1 and 2 threads")
    }

    /// Logits that are a view (the task outputs narrowed out of more channels) get their
    /// gradient through the view; float32 CPU logits take the fused kernel.
    func testLossOfNarrowedLogitsTakesTheFusedKernel() throws {
        let logits = try Tensor.normal([2, 6, 10, 12], generator: Generator(seed: 7)).requiresGrad(true)
        let (total, _, _) = try OutputContrastiveLoss()(logits.narrow(dim: 1, start: 0, length: 5))
        try total.backward()
        let grad = try XCTUnwrap(logits.grad)
        XCTAssertEqual(try grad.narrow(dim: 1, start: 5, length: 1).abs().amax().item(), 0)
        let reference = try logits.detach().requiresGrad(true)
        try OutputContrastiveLoss().composed(reference.narrow(dim: 1, start: 0, length: 5)).loss.backward()
        try assertTensorsClose(grad, reference.grad, rtol: 1e-4, atol: 1e-9, "gradient through narrow")
    }

    func testFusedKernelNamesTheShapeItNeeds() throws {
        let three = try Tensor.normal([3, 4, 5, 6], generator: Generator(seed: 2))
        XCTAssertThrowsError(try Kernels.outputContrastiveLoss(three, posCoeff: 3, negCoeff: 1)) { error in
            XCTAssertTrue("\(error)".contains("logits [2, C, H, W] of two views, got [3, 4, 5, 6]"), "\(error)")
        }
        let double = try Tensor.normal([2, 4, 5, 6], dtype: .float64, generator: Generator(seed: 2))
        XCTAssertThrowsError(try Kernels.outputContrastiveLoss(double, posCoeff: 3, negCoeff: 1)) { error in
            XCTAssertTrue("\(error)".contains("runs on float32 CPU logits, got Double"), "\(error)")
        }
    }
}
