import TestSupport
import Torch
import XCTest

/// Seeded random numbers against PyTorch: `torch.Generator().manual_seed(s)` followed by the
/// same draws, in the same order, as Scripts/fixtures/ops.py makes (`random_numbers()`).
final class RandomParityTests: ConfiguredTestCase {
    /// The seed of the stream in the fixture script.
    private let seed: UInt64 = 20_240_531

    /// Replays the fixture script's stream: every draw must equal PyTorch's, exactly.
    func testSeededStreamMatchesPyTorch() throws {
        let g = try Generator(seed: seed)
        assertClose(try g.state(), try Fixtures.tensor("random.state_seeded"), "state after seeding")
        assertClose(
            try Tensor.uniform([3, 4], low: -2, high: 3, generator: g), try Fixtures.tensor("random.uniform"),
            rtol: 0, atol: 0, "uniform")
        assertClose(
            try Tensor.uniform([5], low: 0, high: 1, dtype: .float64, generator: g),
            try Fixtures.tensor("random.uniform_f64"), rtol: 0, atol: 0, "uniform float64")
        assertClose(
            try Tensor.normal([2, 5], mean: 1, std: 2, generator: g), try Fixtures.tensor("random.normal_small"),
            rtol: 0, atol: 0, "normal (scalar path)")
        assertClose(
            try Tensor.normal([4, 8], mean: -1, std: 0.5, generator: g), try Fixtures.tensor("random.normal_large"),
            rtol: 0, atol: 0, "normal (vectorised path)")
        let p = try Fixtures.tensor("random.bernoulli_p")
        assertClose(
            try p.bernoulli(generator: g), try Fixtures.tensor("random.bernoulli_tensor"), rtol: 0, atol: 0,
            "bernoulli(p)")
        assertClose(
            try Tensor.bernoulli([6, 5], p: 0.3, generator: g), try Fixtures.tensor("random.bernoulli_scalar"),
            rtol: 0, atol: 0, "bernoulli_(0.3)")
        assertClose(try g.state(), try Fixtures.tensor("random.state_after"), "state after the draws")
        assertClose(
            try Tensor.uniform([7], generator: g), try Fixtures.tensor("random.uniform_after"), rtol: 0, atol: 0,
            "uniform after the draws")
    }

    /// Restoring a saved state replays the same numbers (on the same or another generator).
    func testStateSaveRestoreReplaysTheStream() throws {
        let g = try Generator(seed: 7)
        _ = try Tensor.normal([5], generator: g)
        let saved = try g.state()
        let first = try Tensor.uniform([4, 6], generator: g)
        let firstNormal = try Tensor.normal([3], generator: g)
        try g.setState(saved)
        assertClose(try Tensor.uniform([4, 6], generator: g), first, rtol: 0, atol: 0, "uniform after restore")
        assertClose(try Tensor.normal([3], generator: g), firstNormal, rtol: 0, atol: 0, "normal after restore")

        let other = try Generator(seed: 99)
        try other.setState(saved)
        assertClose(try Tensor.uniform([4, 6], generator: other), first, rtol: 0, atol: 0, "another generator")
    }

    /// A state read from PyTorch puts a generator at PyTorch's place in the stream.
    func testStateFromPyTorchContinuesItsStream() throws {
        let g = try Generator(seed: 1)
        try g.setState(try Fixtures.tensor("random.state_after"))
        assertClose(
            try Tensor.uniform([7], generator: g), try Fixtures.tensor("random.uniform_after"), rtol: 0, atol: 0,
            "uniform after restoring PyTorch's state")
    }

    func testSameSeedSameNumbersDifferentSeedDifferentNumbers() throws {
        let a = try Tensor.uniform([16], generator: try Generator(seed: 3)).toArray(Float.self)
        let b = try Tensor.uniform([16], generator: try Generator(seed: 3)).toArray(Float.self)
        let c = try Tensor.uniform([16], generator: try Generator(seed: 4)).toArray(Float.self)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
    }

    func testRandomTensorsHaveTheRequestedShapeDtypeAndRange() throws {
        let g = try Generator(seed: 5)
        let u = try Tensor.uniform([100], low: 2, high: 3, dtype: .float64, generator: g)
        XCTAssertEqual(u.shape, [100])
        XCTAssertEqual(u.dtype, .float64)
        XCTAssertTrue(try u.toArray(Double.self).allSatisfy { $0 >= 2 && $0 < 3 })
        let b = try Tensor.bernoulli([50], p: 0.5, generator: g)
        XCTAssertTrue(try b.toArray(Float.self).allSatisfy { $0 == 0 || $0 == 1 })
    }

    func testGlobalSeedIsReproducible() throws {
        try Runtime.manualSeed(11)
        let a = try Tensor.uniform([8]).toArray(Float.self)
        try Runtime.manualSeed(11)
        let b = try Tensor.uniform([8]).toArray(Float.self)
        XCTAssertEqual(a, b)
    }
}
