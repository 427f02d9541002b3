import Foundation
import SegTTTKernels
import TestSupport
import Torch
import XCTest

/// Autograd scopes, in-place updates, reading and writing raw memory, memory formats,
/// devices and runtime settings, checked against hand-computed values.
final class TensorBehaviourTests: ConfiguredTestCase {
    // MARK: autograd

    func testBackwardAccumulatesAndZeroGradDropsTheGradient() throws {
        let x = try Tensor([Float(1), 2, 3]).requiresGrad(true)
        XCTAssertTrue(x.requiresGrad)
        XCTAssertNil(x.grad)
        try (x * x).sum().backward()  // d/dx sum(x^2) = 2x
        try assertValues(XCTUnwrap(x.grad), [Float(2), 4, 6], shape: [3])
        try (x * x).sum().backward()
        try assertValues(XCTUnwrap(x.grad), [Float(4), 8, 12], shape: [3])
        try x.zeroGrad()
        XCTAssertNil(x.grad)
        try (x * 3).sum().backward()
        try assertValues(XCTUnwrap(x.grad), [Float(3), 3, 3], shape: [3])
    }

    func testBackwardWithExplicitGradientAndRetainedGraph() throws {
        let x = try Tensor([Float(1), -2], shape: [2]).requiresGrad(true)
        let y = try x * x * x  // dy/dx = 3x^2 = [3, 12]
        try y.backward(try Tensor([Float(1), 0.5]), retainGraph: true)
        try assertValues(XCTUnwrap(x.grad), [Float(3), 6], shape: [2])
        try y.backward(try Tensor([Float(1), 1]))
        try assertValues(XCTUnwrap(x.grad), [Float(6), 18], shape: [2])
    }

    func testAutogradErrorsArriveAsTorchErrors() throws {
        XCTAssertThrowsError(try Tensor([Int64(1), 2]).requiresGrad(true)) { error in
            XCTAssertTrue("\(error)".contains("floating point"), "\(error)")
        }
        let x = try Tensor([Float(1), 2]).requiresGrad(true)
        XCTAssertThrowsError(try (x * 2).backward()) { error in
            XCTAssertTrue("\(error)".contains("only for scalar outputs"), "\(error)")
        }
        // In-place updates of a leaf that requires grad need withNoGrad.
        XCTAssertThrowsError(try x.fill_(0)) { error in
            XCTAssertTrue("\(error)".contains("in-place"), "\(error)")
        }
        try withNoGrad { try x.fill_(0) }
        XCTAssertEqual(try x.toArray(Float.self), [0, 0])
    }

    func testWithNoGradStopsRecordingAndRestores() throws {
        let x = try Tensor([Float(1), 2]).requiresGrad(true)
        XCTAssertTrue(isGradEnabled)
        let y = try withNoGrad { () throws -> Tensor in
            XCTAssertFalse(isGradEnabled)
            return try x * 2
        }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertTrue(isGradEnabled)
        XCTAssertTrue(try (x * 2).requiresGrad)
    }

    func testWithNoGradRestoresTheModeWhenTheBodyThrows() {
        XCTAssertThrowsError(
            try withNoGrad {
                _ = try Tensor.zeros([2, 3]).matmul(try Tensor.zeros([4, 5]))
            })
        XCTAssertTrue(isGradEnabled)
    }

    func testWithGradInsideWithNoGrad() throws {
        let x = try Tensor([Float(3)]).requiresGrad(true)
        let inner = try withNoGrad { () throws -> Tensor in
            let recorded = try withGrad { () throws -> Tensor in
                XCTAssertTrue(isGradEnabled)
                return try x * x
            }
            XCTAssertFalse(isGradEnabled)
            XCTAssertTrue(recorded.requiresGrad)
            XCTAssertFalse(try (x * x).requiresGrad)
            return recorded
        }
        XCTAssertTrue(isGradEnabled)
        try inner.sum().backward()  // d/dx x^2 = 2x
        try assertValues(XCTUnwrap(x.grad), [Float(6)], shape: [1])
    }

    func testDetachCutsTheGraphButSharesStorage() throws {
        let x = try Tensor([Float(1), 2, 3]).requiresGrad(true)
        let d = try x.detach()
        XCTAssertFalse(d.requiresGrad)
        XCTAssertFalse(try (d * 2).requiresGrad)
        try d.mul_(10)
        XCTAssertEqual(try x.toArray(Float.self), [10, 20, 30])
    }

    // MARK: in-place updates

    func testInPlaceArithmetic() throws {
        let x = try Tensor([Float(1), 2, 3, 4], shape: [2, 2])
        try x.add_(try Tensor([Float(10), 20]), alpha: 0.5)  // broadcast over rows
        try assertValues(x, [Float(6), 12, 8, 14], shape: [2, 2])
        try x.mul_(0.5)
        try assertValues(x, [Float(3), 6, 4, 7], shape: [2, 2])
        let a = try Tensor([Float(1), 2, 3, 4], shape: [2, 2])
        let b = try Tensor([Float(2), 2, 4, 8], shape: [2, 2])
        try x.addcmul_(a, b, value: 2)  // x + 2ab
        try assertValues(x, [Float(7), 14, 28, 71], shape: [2, 2])
        try x.addcdiv_(a, b, value: -4)  // x - 4a/b
        try assertValues(x, [Float(5), 10, 25, 69], shape: [2, 2])
    }

    func testCopyZeroFill() throws {
        let x = try Tensor.zeros([2, 3])
        try x.copy_(try Tensor([Int64(1), -2, 3]))  // broadcast and converted
        try assertValues(x, [Float(1), -2, 3, 1, -2, 3], shape: [2, 3])
        try x.fill_(2.5)
        try assertValues(x, [Float](repeating: 2.5, count: 6), shape: [2, 3])
        try x.zero_()
        try assertValues(x, [Float](repeating: 0, count: 6), shape: [2, 3])
        XCTAssertThrowsError(try x.copy_(try Tensor.zeros([4])))
    }

    func testInPlaceOnAViewChangesTheBase() throws {
        let x = try Tensor.zeros([3, 4])
        try x.narrow(dim: 1, start: 1, length: 2).fill_(7)
        try x.slice(dim: 0, start: 0, end: 3, step: 2).add_(try Tensor.ones([1]))
        try assertValues(x, [Float(1), 8, 8, 1, 0, 7, 7, 0, 1, 8, 8, 1], shape: [3, 4])
    }

    func testUnbindGivesViewsAndStacksTheirGradients() throws {
        let x = try Tensor.arange(0, 6, dtype: .float32).reshape([2, 3]).requiresGrad(true)
        let rows = try x.unbind(dim: 0)
        XCTAssertEqual(rows.count, 2)
        try assertValues(rows[1], [Float(3), 4, 5], shape: [3])
        let columns = try x.unbind(dim: -1)
        XCTAssertEqual(columns.count, 3)
        try assertValues(columns[2], [Float(2), 5], shape: [2])
        try (rows[0] * 2 + rows[1] * 3).sum().backward()
        try assertValues(try XCTUnwrap(x.grad), [Float(2), 2, 2, 3, 3, 3], shape: [2, 3])
        XCTAssertThrowsError(try x.unbind(dim: 2)) { error in
            XCTAssertTrue("\(error)".contains("out of range"), "\(error)")
        }
    }

    // MARK: memory

    func testToArrayForEachDtype() throws {
        XCTAssertEqual(try Tensor([Float(1.5), -2]).toArray(Float.self), [1.5, -2])
        XCTAssertEqual(try Tensor([1.25, -3.0]).toArray(Double.self), [1.25, -3])
        XCTAssertEqual(try Tensor([Int64.max, Int64.min]).toArray(Int64.self), [Int64.max, Int64.min])
        XCTAssertEqual(try Tensor([Int32.max, -7]).toArray(Int32.self), [Int32.max, -7])
        XCTAssertEqual(try Tensor([Int16.min, 300]).toArray(Int16.self), [Int16.min, 300])
        XCTAssertEqual(try Tensor([Int8(-128), 127]).toArray(Int8.self), [-128, 127])
        XCTAssertEqual(try Tensor([UInt8(0), 255]).toArray(UInt8.self), [0, 255])
        XCTAssertEqual(try Tensor([true, false, true]).toArray(Bool.self), [true, false, true])
        XCTAssertEqual(try Tensor([3, -4]).toArray(Int.self), [3, -4])
        #if arch(x86_64) || arch(arm64)
            if #available(macOS 11.0, iOS 14.0, *) {
                let half = try Tensor([Float16(0.5), Float16(-1024)])
                XCTAssertEqual(half.dtype, .float16)
                XCTAssertEqual(try half.toArray(Float16.self), [0.5, -1024])
            }
        #endif
        // bfloat16 has no Swift type: read it converted. 1 + 2^-7 is the next bfloat16 above 1.
        let bf16 = try Tensor([Float(1.0078125), 3.0], shape: [2]).to(.bfloat16)
        XCTAssertEqual(bf16.dtype, .bfloat16)
        XCTAssertEqual(try bf16.toArray(Float.self), [1.0078125, 3])
        XCTAssertEqual(try bf16.contiguousBytes(), [0x81, 0x3F, 0x40, 0x40])
        // Converting on the way out truncates towards zero, as PyTorch's .long().
        XCTAssertEqual(try Tensor([Float(2.7), -2.7]).toArray(Int64.self), [2, -2])
        // A zero-dimensional tensor has one element.
        XCTAssertEqual(try Tensor(scalar: Float(4)).toArray(Float.self), [4])
        XCTAssertEqual(try Tensor(scalar: Float(4)).shape, [])
    }

    func testToArrayReadsNonContiguousViewsInLogicalOrder() throws {
        let x = try Tensor([Float(0), 1, 2, 3, 4, 5], shape: [2, 3])
        let t = try x.transpose(0, 1)
        XCTAssertEqual(t.strides, [1, 3])
        XCTAssertEqual(try t.toArray(Float.self), [0, 3, 1, 4, 2, 5])
    }

    func testInitFromBytesWithStrides() throws {
        let storage: [Float] = (0..<12).map(Float.init)
        let t = try storage.withUnsafeBytes { raw in
            try Tensor(bytes: raw, shape: [3, 2], strides: [1, 3], dtype: .float32)  // a transposed view
        }
        try assertValues(t, [Float(0), 3, 1, 4, 2, 5], shape: [3, 2])
        XCTAssertEqual(t.strides, [2, 1])  // copied densely
        let stepped = try storage.withUnsafeBytes { raw in
            try Tensor(bytes: raw, shape: [2, 2], strides: [6, 2], dtype: .float32)
        }
        try assertValues(stepped, [Float(0), 2, 6, 8], shape: [2, 2])
        let broadcast = try storage.withUnsafeBytes { raw in
            try Tensor(bytes: raw, shape: [2, 3], strides: [0, 1], dtype: .float32)
        }
        try assertValues(broadcast, [Float(0), 1, 2, 0, 1, 2], shape: [2, 3])
        let int16 = try [Int16(-1), 2, 3, 4].withUnsafeBytes { raw in
            try Tensor(bytes: raw, shape: [2], strides: [2], dtype: .int16)
        }
        try assertValues(int16, [Int16(-1), 3], shape: [2])
    }

    func testInitFromBytesRejectsShortBuffersAndMismatchedStrides() throws {
        let storage: [Float] = [0, 1, 2, 3]
        try storage.withUnsafeBytes { raw in
            XCTAssertThrowsError(try Tensor(bytes: raw, shape: [3, 2], strides: [1, 3], dtype: .float32)) { error in
                XCTAssertEqual(
                    (error as? TorchError)?.message,
                    "a float32 tensor of shape [3, 2] needs more than the 16 bytes given")
            }
            XCTAssertThrowsError(try Tensor(bytes: raw, shape: [2, 2], strides: [2], dtype: .float32)) { error in
                XCTAssertEqual((error as? TorchError)?.message, "strides [2] do not match shape [2, 2]")
            }
            XCTAssertThrowsError(try Tensor(bytes: raw, shape: [5], dtype: .float32))
        }
    }

    func testChannelsLastKeepsValues() throws {
        let x = try Tensor.arange(0, 24, dtype: .float32).reshape([2, 3, 2, 2])  // [N, C, H, W]
        XCTAssertTrue(x.isContiguous())
        XCTAssertFalse(x.isContiguous(.channelsLast))
        let y = try x.contiguous(.channelsLast)
        XCTAssertTrue(y.isContiguous(.channelsLast))
        XCTAssertFalse(y.isContiguous())
        XCTAssertEqual(y.shape, [2, 3, 2, 2])
        XCTAssertEqual(y.strides, [12, 1, 6, 3])
        XCTAssertEqual(try y.toArray(Float.self), (0..<24).map(Float.init))
        let back = try y.contiguous()
        XCTAssertTrue(back.isContiguous())
        XCTAssertEqual(back.strides, [12, 4, 2, 1])
        XCTAssertEqual(try back.toArray(Float.self), (0..<24).map(Float.init))
    }

    // MARK: devices and runtime

    func testDeviceParsing() throws {
        XCTAssertEqual(try Device(parsing: "cpu"), .cpu)
        XCTAssertEqual(try Device(parsing: "cuda"), .cuda(0))
        XCTAssertEqual(try Device(parsing: "cuda:3"), .cuda(3))
        XCTAssertEqual(Device.cuda(2).description, "cuda:2")
        XCTAssertEqual(try Device(parsing: Device.cpu.description), .cpu)
        XCTAssertEqual(try Device(parsing: "cuda:127"), .cuda(127))
        for text in ["gpu", "CPU", "cuda:", "cuda:-1", "cuda:x", "cuda1", "", "cuda:128", "cuda:99999999999999"] {
            XCTAssertThrowsError(try Device(parsing: text), text) { error in
                XCTAssertEqual(
                    (error as? TorchError)?.message,
                    "unknown device '\(text)': use cpu, cuda or cuda:N with N from 0 to 127")
            }
        }
    }

    func testCheckAvailableNamesTheFixForAMissingGPU() throws {
        try Device.cpu.checkAvailable()
        let count = Device.cudaDeviceCount
        XCTAssertThrowsError(try Device.cuda(count).checkAvailable()) { error in
            let expected =
                count == 0
                ? "cuda:0: this build's libtorch has no CUDA or sees no GPU; rebuild with LIBTORCH=<a CUDA libtorch> "
                    + "on a machine with a GPU, or use cpu"
                : "cuda:\(count): this machine has \(count) GPU(s), cuda:0 to cuda:\(count - 1)"
            XCTAssertEqual((error as? TorchError)?.message, expected)
        }
    }

    func testCPUTensorsReportTheirDevice() throws {
        XCTAssertEqual(try Tensor.zeros([1]).device, .cpu)
        if !Device.isCUDAAvailable {
            XCTAssertEqual(Device.cudaDeviceCount, 0)
        }
    }

    func testSynchronizeIsFreeOnTheCPUAndNamesTheFixWithoutCUDA() throws {
        try Device.cpu.synchronize()
        if Device.isCUDAAvailable {
            try Device.cuda(0).synchronize()
        } else {
            XCTAssertThrowsError(try Device.cuda(0).synchronize()) { error in
                XCTAssertTrue("\(error)".contains("CUDA is not available"), "\(error)")
            }
        }
    }

    /// `configure` applies its settings and, by default, flushes denormals; the test case's
    /// own configuration (every core, IEEE arithmetic) is put back afterwards.
    func testConfigureAppliesItsSettings() throws {
        defer { Runtime.configure(Runtime.Settings(flushDenormals: false)) }
        Runtime.configure(Runtime.Settings(threads: 1, flushDenormals: false))
        XCTAssertEqual(Runtime.numThreads, 1)
        XCTAssertFalse(Runtime.flushesDenormals)
        Runtime.configure(Runtime.Settings(threads: 2))
        XCTAssertEqual(Runtime.numThreads, 2)
        #if arch(x86_64)
            XCTAssertTrue(Runtime.flushesDenormals, "configure flushes denormals unless told not to")
        #endif
    }

    /// Configured (ConfiguredTestCase), libtorch runs on every online core.
    func testConfiguredThreadsAreTheActiveProcessorsAndCanBeSet() throws {
        let original = Runtime.numThreads
        defer { Runtime.numThreads = original }
        if ProcessInfo.processInfo.environment["OMP_NUM_THREADS"] == nil {
            XCTAssertEqual(original, ProcessInfo.processInfo.activeProcessorCount)
        }
        Runtime.numThreads = 1
        XCTAssertEqual(Runtime.numThreads, 1)
        // The setting is process-wide: another thread sees it too.
        let seen = ThreadResult()
        let thread = Thread {
            seen.value = Runtime.numThreads
            seen.done.signal()
        }
        thread.start()
        seen.done.wait()
        XCTAssertEqual(seen.value, 1)
        Runtime.numThreads = 0  // clamped to one thread
        XCTAssertEqual(Runtime.numThreads, 1)
        Runtime.numThreads = 2
        XCTAssertEqual(Runtime.numThreads, 2)
    }

    func testFlushingDenormalsReachesEveryThreadAndZeroesDenormals() throws {
        #if arch(x86_64)
            let threads = Runtime.numThreads
            defer {
                Runtime.flushesDenormals = false
                Runtime.numThreads = threads
            }
            Runtime.numThreads = 2
            let denormal = Float.leastNormalMagnitude / 4
            // A large tensor, so that the product is split across the team.
            let x = try Tensor([Float](repeating: denormal, count: 1 << 16))
            XCTAssertFalse(Runtime.flushesDenormals)
            XCTAssertEqual(Runtime.threadsFlushingDenormals, 0)
            XCTAssertEqual(try (x * 3).toArray(Float.self).max(), denormal * 3)

            Runtime.flushesDenormals = true
            XCTAssertTrue(Runtime.flushesDenormals)
            XCTAssertEqual(Runtime.threadsFlushingDenormals, 2)
            XCTAssertEqual(try (x * 3).toArray(Float.self).max(), 0, "denormals were not flushed")
            // Threads started afterwards take it from the thread that starts them.
            Runtime.numThreads = 3
            XCTAssertEqual(Runtime.threadsFlushingDenormals, 3)

            Runtime.flushesDenormals = false
            XCTAssertEqual(Runtime.threadsFlushingDenormals, 0)
            XCTAssertEqual(try (x * 3).toArray(Float.self).max(), denormal * 3)
        #else
            throw XCTSkip("flush-to-zero is set through x86's MXCSR")
        #endif
    }

    /// Tensors of up to 32 MiB come from the heap and stay there once freed, so that the next
    /// step's activations of the same sizes reuse that memory instead of the system mapping and
    /// faulting in their pages again. Under glibc's defaults either they get mappings of their
    /// own (while its dynamic threshold is below their size) or, coming from the heap, the
    /// heap's top is trimmed when they are freed.
    func testFreedTensorMemoryStaysInTheHeapForReuse() throws {
        guard Runtime.keepsFreedMemory else {
            throw XCTSkip("glibc's allocator is set by the environment here, or the C library is not glibc")
        }
        let start = try XCTUnwrap(Runtime.allocatorBytes)
        func allocate() throws -> (heap: Int, mapped: Int)? {
            let tensors = try (0..<3).map { _ in try Tensor.ones([5 << 20]) }  // 20 MiB each
            XCTAssertEqual(try tensors[2].sum().item(), Double(5 << 20))
            return Runtime.allocatorBytes
        }
        let allocated = try XCTUnwrap(allocate())
        let freed = try XCTUnwrap(Runtime.allocatorBytes)
        XCTAssertLessThan(allocated.mapped - start.mapped, 20 << 20, "20 MiB tensors got mappings of their own")
        XCTAssertEqual(freed.heap, allocated.heap, "the heap was trimmed when the tensors were freed")
    }

    func testOpenBLASDefaultsToOneThreadAndCanBeSet() throws {
        guard let original = Runtime.blasThreads else {
            throw XCTSkip("this process's BLAS is not OpenBLAS (no openblas_set_num_threads)")
        }
        defer { Runtime.blasThreads = original }
        if ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"] == nil {
            XCTAssertEqual(original, 1)
        }
        Runtime.blasThreads = 2
        XCTAssertEqual(Runtime.blasThreads, 2)
        Runtime.blasThreads = 0  // clamped to one thread
        XCTAssertEqual(Runtime.blasThreads, 1)
    }

    func testFusedKernelsRunOnLibtorchsThreads() throws {
        try XCTSkipUnless(
            Kernels.joinOpenMP,
            "this libtorch does not run on libgomp: SegTTT's kernels run on the calling thread")
        let original = Runtime.numThreads
        defer { Runtime.numThreads = original }
        Runtime.numThreads = 2
        XCTAssertEqual(Kernels.threads, 2)
        Runtime.numThreads = 1
        XCTAssertEqual(Kernels.threads, 1)
    }

    func testLibtorchVersion() {
        let version = Runtime.libtorchVersion
        XCTAssertTrue(version.hasPrefix("1.") || version.hasPrefix("2."), version)
    }
}

/// A value written by another thread, read after `done` is signalled.
private final class ThreadResult: @unchecked Sendable {
    var value = 0
    let done = DispatchSemaphore(value: 0)
}
