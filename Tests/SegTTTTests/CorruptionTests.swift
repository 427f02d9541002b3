import Foundation
import TestSupport
import Torch
import XCTest

@testable import SegTTT

/// Corruptions: determinism per (frame, seed), severity monotone in a simple statistic,
/// schedules, and name parsing.
final class CorruptionTests: ConfiguredTestCase {
    static let height = 48
    static let width = 64

    /// A textured test image [3, 48, 64] uint8, values 40...215 (no clipping at either end
    /// for most corruptions), the same on every run.
    private func testImage() throws -> Tensor {
        let generator = try Generator(seed: 7)
        let noise = try Tensor.uniform([3, Self.height, Self.width], low: 40, high: 216, generator: generator)
        return try noise.floor().to(.uint8)
    }

    private func bytes(_ t: Tensor) throws -> [UInt8] { try t.contiguousBytes() }

    private func float(_ t: Tensor) throws -> Tensor { try t.to(.float64) / 255 }

    private func apply(_ kind: CorruptionKind, _ severity: Int, _ image: Tensor, frame: Int = 0, seed: UInt64 = 0)
        throws
        -> Tensor
    {
        try Corruption(kind, severity: severity).apply(image: image, frameIndex: frame, seed: seed)
    }

    /// `statistic` over severities 1...5 of `kind` on the test image.
    private func statistics(_ kind: CorruptionKind, _ statistic: (Tensor, Tensor) throws -> Double) throws -> [Double] {
        let image = try testImage()
        return try (1...5).map { try statistic(apply(kind, $0, image), image) }
    }

    private func assertIncreasing(
        _ values: [Double], _ what: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        for i in 1..<values.count {
            XCTAssertGreaterThan(values[i], values[i - 1], "\(what) not increasing: \(values)", file: file, line: line)
        }
    }

    private func assertDecreasing(
        _ values: [Double], _ what: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        assertIncreasing(values.map { -$0 }, what, file: file, line: line)
    }

    /// Variance of (corrupted - clean), in [0, 1] units.
    private func noiseVariance(_ corrupted: Tensor, _ clean: Tensor) throws -> Double {
        try (float(corrupted) - float(clean)).var(unbiased: false).item()
    }

    /// Mean absolute difference from the clean image.
    private func difference(_ corrupted: Tensor, _ clean: Tensor) throws -> Double {
        try (float(corrupted) - float(clean)).abs().mean().item()
    }

    /// Mean squared difference of horizontally and vertically neighbouring pixels.
    private func highFrequencyEnergy(_ image: Tensor) throws -> Double {
        let x = try float(image)
        let dx =
            try x.narrow(dim: 2, start: 1, length: Self.width - 1) - x.narrow(dim: 2, start: 0, length: Self.width - 1)
        let dy =
            try x.narrow(dim: 1, start: 1, length: Self.height - 1)
            - x.narrow(dim: 1, start: 0, length: Self.height - 1)
        return try dx.pow(2).mean().item() + dy.pow(2).mean().item()
    }

    // MARK: determinism

    func testEveryCorruptionKeepsShapeAndDtype() throws {
        let image = try testImage()
        for kind in CorruptionKind.allCases {
            for severity in Corruption.severities {
                let out = try apply(kind, severity, image, frame: 3, seed: 11)
                XCTAssertEqual(out.shape, [3, Self.height, Self.width], "\(kind):\(severity)")
                XCTAssertEqual(out.dtype, .uint8, "\(kind):\(severity)")
            }
        }
    }

    func testBitIdenticalForTheSameFrameAndSeed() throws {
        let image = try testImage()
        for kind in CorruptionKind.allCases {
            let a = try apply(kind, 3, image, frame: 5, seed: 42)
            let b = try apply(kind, 3, image, frame: 5, seed: 42)
            XCTAssertEqual(try bytes(a), try bytes(b), "\(kind)")
        }
    }

    func testRandomCorruptionsDifferAcrossSeedsAndFrames() throws {
        let image = try testImage()
        let random: [CorruptionKind] = [.gaussianNoise, .shotNoise, .impulseNoise, .fog, .night]
        for kind in random {
            let base = try bytes(apply(kind, 3, image, frame: 5, seed: 42))
            XCTAssertNotEqual(base, try bytes(apply(kind, 3, image, frame: 5, seed: 43)), "\(kind): seed")
            XCTAssertNotEqual(base, try bytes(apply(kind, 3, image, frame: 6, seed: 42)), "\(kind): frame")
        }
        // Frame and seed are not interchangeable.
        XCTAssertNotEqual(
            Corruption.generatorSeed(frameIndex: 1, seed: 0), Corruption.generatorSeed(frameIndex: 0, seed: 1))
        // Deterministic corruptions ignore both.
        for kind in [CorruptionKind.brightness, .contrast, .defocusBlur, .jpegCompression] {
            XCTAssertEqual(
                try bytes(apply(kind, 2, image, frame: 1, seed: 1)), try bytes(apply(kind, 2, image, frame: 9, seed: 8))
            )
        }
    }

    func testRefusesNonImages() throws {
        let corruption = try Corruption(.fog, severity: 1)
        XCTAssertThrowsError(try corruption.apply(image: Tensor.zeros([3, 4, 4]), frameIndex: 0, seed: 0)) { error in
            XCTAssertTrue("\(error)".contains("[3, H, W] uint8"), "\(error)")
        }
        XCTAssertThrowsError(try corruption.apply(image: Tensor.zeros([4, 4], dtype: .uint8), frameIndex: 0, seed: 0))
    }

    // MARK: severity

    func testNoiseVarianceGrowsWithSeverity() throws {
        for kind in [CorruptionKind.gaussianNoise, .shotNoise, .impulseNoise] {
            assertIncreasing(try statistics(kind, noiseVariance), "\(kind) noise variance")
        }
        // Gaussian noise of std 0.08 at severity 1, little clipped on this image.
        let variance = try statistics(.gaussianNoise, noiseVariance)[0]
        XCTAssertEqual(variance, 0.08 * 0.08, accuracy: 0.0008)
    }

    func testContrastBrightnessNightAndBlurAreMonotone() throws {
        assertDecreasing(
            try statistics(.contrast) { c, _ in try self.float(c).var().item().squareRoot() }, "contrast std")
        assertIncreasing(try statistics(.brightness) { c, _ in try self.float(c).mean().item() }, "brightness mean")
        assertDecreasing(try statistics(.night) { c, _ in try self.float(c).mean().item() }, "night mean")
        assertDecreasing(try statistics(.defocusBlur) { c, _ in try self.highFrequencyEnergy(c) }, "high frequencies")
    }

    func testFogAndJPEGDepartFurtherFromTheCleanImage() throws {
        assertIncreasing(try statistics(.fog, difference), "fog difference")
        assertIncreasing(try statistics(.jpegCompression, difference), "JPEG difference")
    }

    // MARK: the maths of single corruptions

    func testContrastKeepsChannelMeans() throws {
        let image = try testImage()
        let out = try apply(.contrast, 2, image)
        let before = try float(image).mean(dims: [1, 2]).toArray(Double.self)
        let after = try float(out).mean(dims: [1, 2]).toArray(Double.self)
        for (a, b) in zip(before, after) { XCTAssertEqual(a, b, accuracy: 1.0 / 255) }
    }

    /// Brightness against skimage's rgb2hsv -> V + c -> hsv2rgb, written out per pixel.
    func testBrightnessIsAnHSVValueShift() throws {
        let pixels: [(Int, Int, Int)] = [(200, 40, 90), (10, 10, 10), (0, 0, 0), (250, 250, 120), (30, 160, 220)]
        var values = [UInt8]()
        for c in 0..<3 { for p in pixels { values.append(UInt8([p.0, p.1, p.2][c])) } }
        let image = try Tensor(values, shape: [3, 1, pixels.count])
        let shift = 0.3  // severity 3
        let out = try apply(.brightness, 3, image).toArray(UInt8.self)
        for (i, p) in pixels.enumerated() {
            let expected = Self.hsvShift(Double(p.0) / 255, Double(p.1) / 255, Double(p.2) / 255, shift)
            for c in 0..<3 {
                XCTAssertEqual(
                    Double(out[c * pixels.count + i]), (expected[c] * 255).rounded(), accuracy: 1, "pixel \(p)")
            }
        }
    }

    /// The HSV round trip of skimage (hue in sixths, saturation delta / max).
    static func hsvShift(_ r: Double, _ g: Double, _ b: Double, _ shift: Double) -> [Double] {
        let v = max(r, g, b)
        let delta = v - min(r, g, b)
        let s = v == 0 ? 0 : delta / v
        var h = 0.0
        if delta > 0 {
            if v == r {
                h = (g - b) / delta
            } else if v == g {
                h = 2 + (b - r) / delta
            } else {
                h = 4 + (r - g) / delta
            }
            h = (h / 6).truncatingRemainder(dividingBy: 1)
            if h < 0 { h += 1 }
        }
        let v2 = min(v + shift, 1)
        let i = Int(h * 6) % 6
        let f = h * 6 - Double(Int(h * 6))
        let p = v2 * (1 - s)
        let q = v2 * (1 - f * s)
        let t = v2 * (1 - (1 - f) * s)
        switch i {
        case 0: return [v2, t, p]
        case 1: return [q, v2, p]
        case 2: return [p, v2, t]
        case 3: return [p, q, v2]
        case 4: return [t, p, v2]
        default: return [v2, p, q]
        }
    }

    func testDefocusKernelIsANormalisedDisk() {
        let small = defocusKernel(radius: 3, aliasBlur: 0.1)
        XCTAssertEqual(small.count, 17)
        XCTAssertEqual(small.joined().reduce(0, +), 1, accuracy: 1e-12)
        // Integer points with u^2 + v^2 <= 9: 29, each 1/29 (the 0.1 Gaussian barely blurs).
        XCTAssertEqual(small[8][8], 1.0 / 29, accuracy: 1e-9)
        XCTAssertEqual(small[8][11], 1.0 / 29, accuracy: 1e-9)
        XCTAssertEqual(small[8][12], 0, accuracy: 1e-12)
        let large = defocusKernel(radius: 10, aliasBlur: 0.5)
        XCTAssertEqual(large.count, 21)
        // Not renormalised after the reflect-101 blur, as in ImageNet-C: mass comes back at the border.
        XCTAssertEqual(large.joined().reduce(0, +), 1.0108, accuracy: 1e-4)
        XCTAssertEqual(defocusKernel(radius: 6, aliasBlur: 0.5).joined().reduce(0, +), 1, accuracy: 1e-12)
        for row in 0..<21 {
            for column in 0..<21 { XCTAssertEqual(large[row][column], large[column][row], accuracy: 1e-15) }
        }
        XCTAssertEqual(reflect101Indices(length: 4, pad: 2), [2, 1, 0, 1, 2, 3, 2, 1])
        XCTAssertEqual(reflect101Indices(length: 2, pad: 3), [1, 0, 1, 0, 1, 0, 1, 0])
    }

    func testPlasmaFractalSpansZeroToOneAndIsSeeded() throws {
        let a = try plasmaFractal(mapSize: 64, wibbleDecay: 2, generator: Generator(seed: 3))
        let b = try plasmaFractal(mapSize: 64, wibbleDecay: 2, generator: Generator(seed: 3))
        XCTAssertEqual(a.shape, [64, 64])
        XCTAssertEqual(try a.amin().item(), 0)
        XCTAssertEqual(try a.amax().item(), 1)
        XCTAssertEqual(try a.toArray(Double.self), try b.toArray(Double.self))
        XCTAssertEqual(Corruption.nextPowerOfTwo(64), 64)
        XCTAssertEqual(Corruption.nextPowerOfTwo(65), 128)
    }

    func testPoissonCountsHaveMeanAndVarianceLambda() throws {
        // Level 255 gives lambda = c; level 51 gives c / 5.
        for (level, c) in [(255, 0.3), (255, 4.0), (51, 60.0), (255, 60.0)] {
            let lambda = c * Double(level) / 255
            let levels = try Tensor.full([40000], value: Double(level), dtype: .int64)
            let counts = try poissonCounts(levels: levels, photonsPerUnit: c, generator: Generator(seed: 9)).to(
                .float64)
            XCTAssertEqual(try counts.mean().item(), lambda, accuracy: 0.03 * lambda + 0.01, "mean at \(lambda)")
            XCTAssertEqual(try counts.var().item(), lambda, accuracy: 0.06 * lambda + 0.02, "variance at \(lambda)")
            XCTAssertEqual(try (counts - counts.floor()).abs().amax().item(), 0, "whole counts at \(lambda)")
        }
        // P(K = 0) = exp(-lambda): 0.741 at lambda 0.3 (a rounded normal would give 0.64).
        let small = try poissonCounts(
            levels: Tensor.full([40000], value: 255, dtype: .int64), photonsPerUnit: 0.3, generator: Generator(seed: 2))
        XCTAssertEqual(try small.eq(0).to(.float64).mean().item(), Foundation.exp(-0.3), accuracy: 0.01)
        let zero = try poissonCounts(
            levels: Tensor.zeros([100], dtype: .int64), photonsPerUnit: 60, generator: Generator(seed: 1))
        XCTAssertEqual(try zero.abs().amax().item(), 0)
    }

    // MARK: names and schedules

    func testParsingNames() throws {
        XCTAssertEqual(try Corruption(parsing: "gaussian_noise:3"), try Corruption(.gaussianNoise, severity: 3))
        XCTAssertEqual(try Corruption(parsing: " JPEG-Compression:5 "), try Corruption(.jpegCompression, severity: 5))
        XCTAssertEqual(try Corruption(parsing: "fog:1").description, "fog:1")
        for kind in CorruptionKind.allCases {
            XCTAssertEqual(try Corruption(parsing: "\(kind.rawValue):2").kind, kind)
        }

        XCTAssertThrowsError(try Corruption(parsing: "gausian_noise:3")) { error in
            XCTAssertEqual(error as? CorruptionError, .unknownName("gausian_noise"))
            let text = "\(error)"
            for kind in CorruptionKind.allCases { XCTAssertTrue(text.contains(kind.rawValue), text) }
        }
        XCTAssertThrowsError(try Corruption(parsing: "snowy")) { error in
            XCTAssertEqual(error as? CorruptionError, .unknownName("snowy"))
        }
        XCTAssertThrowsError(try Corruption(parsing: "fog:6")) { error in
            XCTAssertEqual(error as? CorruptionError, .invalidSeverity(kind: "fog", severity: 6))
            XCTAssertTrue("\(error)".contains("1 ... 5"))
        }
        XCTAssertThrowsError(try Corruption(parsing: "fog"))
        XCTAssertThrowsError(try Corruption(parsing: "fog:three")) { error in
            XCTAssertTrue("\(error)".contains("fog:3"), "\(error)")
        }
        XCTAssertThrowsError(try Corruption(parsing: "fog:1:2"))
        XCTAssertThrowsError(try Corruption(.contrast, severity: 0))
    }

    func testScheduleParsingAndSwitchFrames() throws {
        let schedule = try CorruptionSchedule(parsing: "gaussian_noise:1@3, clean@2,fog:2@4")
        XCTAssertEqual(schedule.period, 9)
        XCTAssertEqual(schedule.description, "gaussian_noise:1@3,clean@2,fog:2@4")
        XCTAssertEqual(try CorruptionSchedule(parsing: schedule.description), schedule)
        let noise = try Corruption(.gaussianNoise, severity: 1)
        let fog = try Corruption(.fog, severity: 2)
        let expected: [Corruption?] = [noise, noise, noise, nil, nil, fog, fog, fog, fog]
        XCTAssertEqual((0..<9).map { schedule.corruption(at: $0) }, expected)
        // The schedule repeats after its period.
        XCTAssertEqual((9..<18).map { schedule.corruption(at: $0) }, expected)

        let constant = try CorruptionSchedule(parsing: "night:4")
        XCTAssertEqual(constant.corruption(at: 1234), try Corruption(.night, severity: 4))
        XCTAssertEqual(constant.description, "night:4")

        for bad in ["", "fog:3@0", "fog:3@", "fog:3@x", "fog:3@10,,clean@2", "rain:2@10"] {
            XCTAssertThrowsError(try CorruptionSchedule(parsing: bad), bad)
        }
        XCTAssertThrowsError(try CorruptionSchedule(parsing: "fog:3@0")) { error in
            XCTAssertTrue("\(error)".contains("NAME:SEVERITY@FRAMES"), "\(error)")
        }
        XCTAssertThrowsError(try CorruptionSchedule([]))
    }

    /// A stream of one repeated image, in memory.
    private struct RepeatedImage: SegmentationDataset {
        let image: Tensor
        let frames: Int
        var name: String { "repeated" }
        var classNames: [String] { ["a", "b"] }
        var count: Int { frames }
        func sample(at index: Int) throws -> Sample {
            Sample(
                name: "f\(index)", image: image,
                label: try Tensor.zeros([image.shape[1], image.shape[2]], dtype: .int64))
        }
    }

    func testCorruptedDatasetFollowsTheSchedule() throws {
        let image = try testImage()
        let base = RepeatedImage(image: image, frames: 7)
        let schedule = try CorruptionSchedule(parsing: "impulse_noise:2@2,clean@1,contrast:4@2")
        let dataset = CorruptedDataset(base, schedule: schedule, seed: 5)
        XCTAssertEqual(dataset.count, 7)
        XCTAssertEqual(dataset.name, "repeated[impulse_noise:2@2,clean@1,contrast:4@2]")
        XCTAssertEqual(dataset.classNames, ["a", "b"])
        XCTAssertEqual(dataset.frameName(at: 2), "frame 2")
        let clean = try bytes(image)
        for index in 0..<7 {
            let sample = try dataset.sample(at: index)
            XCTAssertEqual(sample.name, "f\(index)")
            XCTAssertNotNil(sample.label)
            let got = try bytes(sample.image)
            if let corruption = schedule.corruption(at: index) {
                let expected = try corruption.apply(image: image, frameIndex: index, seed: 5)
                XCTAssertEqual(got, try bytes(expected), "frame \(index)")
                XCTAssertNotEqual(got, clean, "frame \(index)")
            } else {
                XCTAssertEqual(got, clean, "frame \(index) should be clean")
            }
        }
        // Same stream again: the same bits; another seed: other noise.
        XCTAssertEqual(try bytes(dataset.sample(at: 0).image), try bytes(dataset.sample(at: 0).image))
        let other = CorruptedDataset(base, schedule: schedule, seed: 6)
        XCTAssertNotEqual(try bytes(other.sample(at: 0).image), try bytes(dataset.sample(at: 0).image))
        let single = CorruptedDataset(base, corruption: try Corruption(.fog, severity: 5), seed: 1)
        XCTAssertEqual(single.name, "repeated[fog:5]")
    }
}
