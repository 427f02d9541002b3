import Foundation
import TestSupport
import Torch
import XCTest

@testable import TorchNN

/// Reading `.pth` checkpoints in both PyTorch layouts, and safetensors, against fixtures
/// written by Scripts/fixtures/checkpoints.py (`/usr/bin/python3 Scripts/fixtures/checkpoints.py`).
final class CheckpointTests: ConfiguredTestCase {
    /// dtype and shape of every tensor of state_dict.pth, in the saved order.
    static let layout: [(name: String, dtype: DType, shape: [Int])] = [
        ("conv.weight", .float32, [4, 3, 3, 3]), ("conv.bias", .float64, [4]), ("special", .float32, [7]),
        ("half", .float16, [2, 5]), ("bfloat", .bfloat16, [6]), ("long", .int64, [3, 4]), ("int", .int32, [5]),
        ("short", .int16, [5]), ("char", .int8, [5]), ("byte", .uint8, [10]), ("mask", .bool, [2, 3]),
        ("bn.num_batches_tracked", .int64, []), ("scale", .float32, []), ("empty", .float32, [0, 3]),
        ("transposed", .float32, [5, 3]), ("expanded", .float32, [3, 4]), ("shared.head", .float32, [6]),
        ("shared.grid", .float32, [2, 5]), ("shared.strided", .float32, [15]), ("shared.far", .float32, [10]),
        ("parameter", .float32, [2, 2]),
    ]

    // MARK: fixtures and helpers

    func fixture(_ file: String) throws -> URL {
        let url = URL(fileURLWithPath: file)
        let found = Bundle.module.url(
            forResource: url.deletingPathExtension().lastPathComponent, withExtension: url.pathExtension,
            subdirectory: "Fixtures")
        return try XCTUnwrap(found, "fixture \(file) is missing; run /usr/bin/python3 Scripts/fixtures/checkpoints.py")
    }

    func expected() throws -> StateDict {
        try SafeTensors.read(try fixture("expected.safetensors")).tensors
    }

    /// A fresh temporary folder, removed when the test ends.
    func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "CheckpointTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        return folder
    }

    /// Asserts equal names in the same order, dtypes, shapes and bytes (so NaN and -0.0 too).
    func assertSame(_ actual: StateDict, _ expected: StateDict, file: StaticString = #filePath, line: UInt = #line)
        throws
    {
        XCTAssertEqual(actual.names, expected.names, file: file, line: line)
        for (name, want) in expected {
            let got = try XCTUnwrap(actual[name], "missing \(name)", file: file, line: line)
            XCTAssertEqual(got.dtype, want.dtype, name, file: file, line: line)
            XCTAssertEqual(got.shape, want.shape, name, file: file, line: line)
            XCTAssertEqual(try got.contiguousBytes(), try want.contiguousBytes(), name, file: file, line: line)
        }
    }

    /// Asserts that loading `url` throws a `CheckpointError` naming it; returns its reason.
    @discardableResult
    func assertLoadFails(_ url: URL, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            let loaded = try Checkpoint.load(url)
            XCTFail(
                "\(url.lastPathComponent) loaded \(loaded.count) tensors instead of failing", file: file, line: line)
        } catch let error as CheckpointError {
            XCTAssertEqual(error.path, url.path, file: file, line: line)
            return error.reason
        } catch {
            XCTFail("not a CheckpointError: \(error)", file: file, line: line)
        }
        return ""
    }

    /// SplitMix64: seeded random bytes for the garbage and corruption tests.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    // MARK: both .pth layouts

    func testZipLayoutMatchesPyTorch() throws {
        let before = Runtime.liveTensorCount
        do {
            let url = try fixture("state_dict.pth")
            XCTAssertEqual(try Checkpoint.format(of: url), .zip)
            let loaded = try Checkpoint.load(url)
            try assertSame(loaded, try expected())
            XCTAssertEqual(loaded.map { $0.name }, Self.layout.map { $0.name })
            XCTAssertEqual(loaded.map { $0.tensor.dtype }, Self.layout.map { $0.dtype })
            XCTAssertEqual(loaded.map { $0.tensor.shape }, Self.layout.map { $0.shape })
        }
        XCTAssertEqual(Runtime.liveTensorCount, before, "a tensor handle leaked")
    }

    func testLegacyLayoutMatchesPyTorch() throws {
        for file in ["state_dict_legacy.pth", "state_dict_legacy_protocol4.pth"] {
            let url = try fixture(file)
            XCTAssertEqual(try Checkpoint.format(of: url), .legacyPickle, file)
            try assertSame(try Checkpoint.load(url), try expected())
        }
    }

    func testZip64ArchiveMatchesPyTorch() throws {
        let url = try fixture("state_dict_zip64.pth")
        XCTAssertEqual(try Checkpoint.format(of: url), .zip)
        try assertSame(try Checkpoint.load(url), try expected())
    }

    func testValuesOfEveryDtypeAndView() throws {
        let loaded = try Checkpoint.load(try fixture("state_dict_legacy.pth"))
        func tensor(_ name: String) throws -> Tensor { try XCTUnwrap(loaded[name], name) }
        XCTAssertEqual(
            try tensor("long").toArray(Int64.self), [-(1 << 62), -1, 0, 1, 1 << 40, 7, -7, .max, 5, 6, 7, 8])
        XCTAssertEqual(try tensor("int").toArray(Int32.self), [.min, -1, 0, .max, 12345])
        XCTAssertEqual(try tensor("short").toArray(Int16.self), [.min, -2, 0, 3, .max])
        XCTAssertEqual(try tensor("char").toArray(Int8.self), [.min, -1, 0, 1, 127])
        XCTAssertEqual(try tensor("byte").toArray(UInt8.self), Array(stride(from: 0, to: 250, by: 25)))
        XCTAssertEqual(try tensor("mask").toArray(Bool.self), [true, false, true, false, false, true])
        XCTAssertEqual(try tensor("bn.num_batches_tracked").itemInt(), 7)
        XCTAssertEqual(try tensor("scale").item(), 3.5)
        XCTAssertEqual(try tensor("empty").count, 0)
        let special = try tensor("special").toArray(Float.self)
        XCTAssertEqual(Array(special.prefix(4)), [0, -0.0, .infinity, -.infinity])
        XCTAssertEqual(special[1].sign, .minus)
        XCTAssertTrue(special[4].isNaN)
        XCTAssertEqual(special[5], Float(1e-45))

        // Views of one storage: head = base[2:8], grid = base[10:20], strided = base[1:60:4].
        let head = try tensor("shared.head").toArray(Float.self)
        let grid = try tensor("shared.grid").toArray(Float.self)
        let strided = try tensor("shared.strided").toArray(Float.self)
        XCTAssertEqual(head[3], strided[1])  // base[5]
        XCTAssertEqual(grid[3], strided[3])  // base[13]
        // expanded = x.expand(3, 4) from [3, 1]: every row repeats one value.
        let expanded = try tensor("expanded").toArray(Float.self)
        for row in 0..<3 { XCTAssertEqual(Set(expanded[row * 4..<row * 4 + 4]).count, 1) }
    }

    /// A legacy persistent id naming a view of a storage (PyTorch before 0.4): the tensor
    /// 'window' lies at offset 2 of the view at offset 4 of 'whole''s storage.
    func testLegacyStorageViews() throws {
        let loaded = try Checkpoint.load(try fixture("legacy_storage_views.pth"))
        XCTAssertEqual(loaded.names, ["whole", "window"])
        let window = try XCTUnwrap(loaded["window"])
        XCTAssertEqual(window.shape, [2, 3])
        let whole = try XCTUnwrap(loaded["whole"]).toArray(Float.self)
        XCTAssertEqual(try window.toArray(Float.self), Array(whole[6..<12]))
    }

    // MARK: checkpoint shapes

    func testNestedStateDictIsReturned() throws {
        let all = try expected()
        let nested = try Checkpoint.load(try fixture("nested.pth"))
        let names = ["conv.weight", "conv.bias", "bn.num_batches_tracked"]
        try assertSame(nested, StateDict(names.compactMap { name in all[name].map { (name, $0) } }))
    }

    func testModelStateDictOfTrainingCheckpointIsReturned() throws {
        let loaded = try Checkpoint.load(try fixture("training_checkpoint.pth"))
        XCTAssertEqual(loaded.names, ["weight", "bias"])
        XCTAssertEqual(try XCTUnwrap(loaded["weight"]).shape, [2, 3])
        XCTAssertEqual(try XCTUnwrap(loaded["bias"]).shape, [2])
    }

    func testModulePrefixIsKept() throws {
        let all = try expected()
        let loaded = try Checkpoint.load(try fixture("module_prefixed_legacy.pth"))
        XCTAssertEqual(loaded.names, ["module.conv.weight", "module.conv.bias", "module.bn.num_batches_tracked"])
        let names = ["conv.weight", "conv.bias", "bn.num_batches_tracked"]
        try assertSame(
            loaded.removingPrefix("module."), StateDict(names.compactMap { name in all[name].map { (name, $0) } }))
    }

    // MARK: refused files

    func testWholePickledModelIsRefusedByNamingItsClass() throws {
        let reason = assertLoadFails(try fixture("whole_model.pth"))
        XCTAssertTrue(reason.contains("torch.nn.modules.linear.Linear"), reason)
        XCTAssertTrue(reason.contains("state_dict()"), reason)
    }

    func testDeflatedArchiveIsRefusedClearly() throws {
        let url = try fixture("state_dict_deflated.pth")
        XCTAssertEqual(try Checkpoint.format(of: url), .zip)
        let reason = assertLoadFails(url)
        XCTAssertTrue(reason.contains("deflate") && reason.contains("uncompressed"), reason)
    }

    func testZipWithoutDataPickleIsRefused() throws {
        let reason = assertLoadFails(try fixture("not_a_checkpoint.zip"))
        XCTAssertTrue(reason.contains("data.pkl"), reason)
    }

    func testMissingFileNamesThePath() throws {
        let url = try temporaryFolder().appendingPathComponent("absent.pth")
        XCTAssertTrue(assertLoadFails(url).contains("does not exist"))
        XCTAssertThrowsError(try Checkpoint.format(of: url)) { error in
            XCTAssertEqual((error as? CheckpointError)?.path, url.path)
        }
    }

    func testTruncatedFilesThrow() throws {
        let folder = try temporaryFolder()
        for file in [
            "state_dict.pth", "state_dict_legacy.pth", "state_dict_legacy_protocol4.pth", "state_dict_zip64.pth",
            "expected.safetensors",
        ] {
            let bytes = try Data(contentsOf: try fixture(file))
            let n = bytes.count
            for cut in [0, 1, 3, 4, 8, 9, 20, 64, n / 4, n / 2, 3 * n / 4, n - 100, n - 30, n - 22, n - 9, n - 1] {
                let url = folder.appendingPathComponent("cut-\(cut)-\(file)")
                try bytes.prefix(cut).write(to: url)
                assertLoadFails(url)
            }
        }
    }

    func testGarbageFilesThrow() throws {
        let folder = try temporaryFolder()
        var random = SeededGenerator(state: 1)
        func noise(_ count: Int) -> Data { Data((0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }) }
        let legacyHead = try Data(contentsOf: try fixture("state_dict_legacy.pth")).prefix(16)
        let garbage: [(String, Data)] = [
            ("random.pth", noise(4096)),
            ("text.pth", Data("this is not a checkpoint\n".utf8)),
            ("json.pth", Data("{\"a\": 1}".utf8)),
            ("zip-magic.pth", Data(ZipArchive.localHeaderMagic) + noise(500)),
            ("legacy-magic.pth", legacyHead + noise(500)),
            ("pickle.pth", Data([0x80, 0x02]) + noise(500)),
            ("empty.pth", Data()),
        ]
        for (name, data) in garbage {
            let url = folder.appendingPathComponent(name)
            try data.write(to: url)
            let reason = assertLoadFails(url)
            XCTAssertFalse(reason.isEmpty, name)
        }
        XCTAssertTrue(assertLoadFails(folder.appendingPathComponent("empty.pth")).contains("empty"))
    }

    /// Bytes overwritten at random places either still load or throw a CheckpointError; nothing traps.
    func testCorruptedBytesNeverCrash() throws {
        let folder = try temporaryFolder()
        var random = SeededGenerator(state: 42)
        for file in ["state_dict.pth", "state_dict_legacy.pth"] {
            let original = try Data(contentsOf: try fixture(file))
            for trial in 0..<150 {
                var bytes = original
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
                let url = folder.appendingPathComponent("\(trial)-\(file)")
                try bytes.write(to: url)
                do {
                    _ = try Checkpoint.load(url)
                } catch let error as CheckpointError {
                    XCTAssertEqual(error.path, url.path)
                }
            }
        }
    }

    /// A legacy checkpoint `{'w': one float storage viewed with size [rows, columns] and the
    /// given strides}`, written opcode by opcode as torch.save does.
    func legacyCheckpoint(rows: Int32, columns: Int32, strides: [UInt8]) -> Data {
        func text(_ value: String) -> [UInt8] { [0x8C, UInt8(value.utf8.count)] + Array(value.utf8) }
        func global(_ module: String, _ name: String) -> [UInt8] { [0x63] + Array("\(module)\n\(name)\n".utf8) }
        func int32(_ value: Int32) -> [UInt8] { [0x4A] + withUnsafeBytes(of: value.littleEndian, Array.init) }
        var bytes: [UInt8] = [0x80, 0x02, 0x8A, 0x0A] + TorchPickle.legacyMagic + [0x2E]
        bytes += [0x80, 0x02, 0x4D, 0xE9, 0x03, 0x2E]  // protocol version 1001
        bytes += [0x80, 0x02, 0x7D, 0x2E]  // system info: {}
        bytes += [0x80, 0x02, 0x7D] + text("w") + global("torch._utils", "_rebuild_tensor_v2") + [0x28]
        // The persistent id ('storage', FloatStorage, '0', 'cpu', 1, None).
        bytes += [0x28] + text("storage") + global("torch", "FloatStorage") + text("0") + text("cpu")
        bytes += [0x4B, 0x01, 0x4E, 0x74, 0x51]
        bytes += [0x4B, 0x00] + int32(rows) + int32(columns) + [0x86, 0x4B, strides[0], 0x4B, strides[1], 0x86]
        bytes += [0x89] + global("collections", "OrderedDict") + [0x29, 0x52]  // requires_grad, hooks
        bytes += [0x74, 0x52, 0x73, 0x2E]
        bytes += [0x80, 0x02, 0x5D] + text("0") + [0x61, 0x2E]  // the storage keys: ['0']
        bytes += [1, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x80, 0x3F]  // one element: 1.0
        return Data(bytes)
    }

    func testHugeExpandedTensorIsRefusedBeforeItIsCopied() throws {
        // Found while fuzzing the checkpoint readers (by reading makeTensor; the fuzz target then
        // reproduced it as an out-of-memory finding): a few hundred bytes holding
        // torch.ones(1, 1).expand(20000, 20000) (strides 0) were copied out densely, 1.6 GB.
        XCTAssertThrowsError(
            try Checkpoint.decode(legacyCheckpoint(rows: 20000, columns: 20000, strides: [0, 0]), path: "big.pth")
        ) { error in
            let checkpointError = error as? CheckpointError
            XCTAssertEqual(checkpointError?.path, "big.pth")
            let reason = checkpointError?.reason ?? "\(error)"
            XCTAssertTrue(reason.contains("tensor 'w'") && reason.contains("256 MiB"), reason)
        }
        // Small expanded tensors are still copied out.
        let small = try Checkpoint.decode(legacyCheckpoint(rows: 3, columns: 4, strides: [0, 0]), path: "small.pth")
        XCTAssertEqual(try XCTUnwrap(small["w"]).toArray(Float.self), [Float](repeating: 1, count: 12))
    }

    // MARK: the pickle machine

    func unpickle(_ bytes: [UInt8]) throws -> PickleMachine.Result {
        try PickleMachine.load(Data(bytes), host: TorchPickleHost())
    }

    func testMemoizedListIsSharedAfterItIsFilled() throws {
        // [] memoized as 0, then filled by APPENDS, then fetched again: (l, l) with l = [1, 2].
        let result = try unpickle([
            0x80, 0x02, 0x5D, 0x71, 0x00, 0x28, 0x4B, 0x01, 0x4B, 0x02, 0x65, 0x68, 0x00, 0x86, 0x2E,
        ])
        let pair = try XCTUnwrap(result.heap.sequence(result.value))
        for item in pair {
            let list = try XCTUnwrap(result.heap.sequence(item))
            XCTAssertEqual(
                list.map { value -> Int? in if case .int(let n) = value { return n } else { return nil } }, [1, 2])
        }
    }

    func testLongIntegers() throws {
        func long(_ bytes: [UInt8]) throws -> PickleValue {
            try unpickle([0x80, 0x02, 0x8A, UInt8(bytes.count)] + bytes + [0x2E]).value
        }
        guard case .int(-1) = try long([0xFF]) else { return XCTFail("LONG1 ff is -1") }
        guard case .int(0) = try long([]) else { return XCTFail("an empty LONG1 is 0") }
        guard case .int(Int.min) = try long([0, 0, 0, 0, 0, 0, 0, 0x80]) else { return XCTFail("Int.min") }
        guard case .int(1) = try long([1, 0, 0, 0, 0, 0, 0, 0, 0]) else { return XCTFail("1 in 9 bytes") }
        guard case .bigInt(let big) = try long([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00]) else {
            return XCTFail("2^64 - 1 does not fit an Int")
        }
        XCTAssertEqual(big.count, 9)
        guard case .bigInt = try long([0, 0, 0, 0, 0, 0, 0, 0x80, 0x00]) else {
            return XCTFail("2^63 does not fit an Int")
        }
    }

    func testDeepAndCyclicPicklesDoNotExhaustTheStack() throws {
        // None wrapped in 300,000 one-tuples: freeing it must not recurse.
        let deep = try unpickle([0x80, 0x02, 0x4E] + [UInt8](repeating: 0x85, count: 300_000) + [0x2E])
        XCTAssertNotNil(deep.heap.sequence(deep.value))
        // A list that contains itself.
        let cycle = try unpickle([0x80, 0x02, 0x5D, 0x71, 0x00, 0x68, 0x00, 0x61, 0x2E])
        XCTAssertEqual(cycle.heap.sequence(cycle.value)?.count, 1)
    }

    func testForbiddenGlobalIsNamed() {
        // GLOBAL 'os system'
        let bytes: [UInt8] = [0x80, 0x02, 0x63] + Array("os\nsystem\n".utf8) + [0x2E]
        XCTAssertThrowsError(try unpickle(bytes)) { error in
            let reason = (error as? FormatError)?.reason ?? ""
            XCTAssertTrue(reason.contains("'os.system'"), reason)
        }
    }

    func testMalformedPicklesThrowWithTheirOffset() {
        let cases: [[UInt8]] = [
            [0x80, 0x02, 0x30, 0x2E],  // POP on an empty stack
            [0x80, 0x02, 0x68, 0x05, 0x2E],  // BINGET of a memo entry never stored
            [0x80, 0x02, 0x58, 0xFF, 0xFF, 0xFF, 0x7F, 0x61],  // BINUNICODE longer than the data
            [0x80, 0x02, 0x28, 0x4E, 0x65, 0x2E],  // APPENDS without a list below the MARK
            [0x80, 0x09, 0x4E, 0x2E],  // protocol 9
            [0x80, 0x02, 0xFF],  // unknown opcode
            [0x80, 0x02, 0x4E],  // no STOP
        ]
        for bytes in cases {
            XCTAssertThrowsError(try unpickle(bytes)) { error in
                let reason = (error as? FormatError)?.reason ?? ""
                XCTAssertTrue(reason.hasPrefix("malformed pickle at byte "), reason)
            }
        }
    }

    // MARK: safetensors

    func testSafeTensorsRoundTrip() throws {
        let url = try temporaryFolder().appendingPathComponent("weights.safetensors")
        let tensors = try expected()
        try SafeTensors.write(tensors, to: url, metadata: ["format": "pt", "note": "round trip"])
        XCTAssertEqual(try Checkpoint.format(of: url), .safetensors)
        let read = try SafeTensors.read(url)
        try assertSame(read.tensors, tensors)
        XCTAssertEqual(read.metadata, ["format": "pt", "note": "round trip"])
        try assertSame(try Checkpoint.load(url), tensors)
    }

    /// Regression: a header of 128 bytes makes the file start with 0x80, a pickle's first byte.
    func testSafeTensorsWhoseLengthStartsLikeAPickle() throws {
        var header = Array(#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#.utf8)
        header += [UInt8](repeating: 0x20, count: 128 - header.count)
        var bytes = Data([0x80, 0, 0, 0, 0, 0, 0, 0]) + Data(header)
        withUnsafeBytes(of: Float(2.5)) { bytes.append(contentsOf: $0) }
        let url = try temporaryFolder().appendingPathComponent("pickle-like.safetensors")
        try bytes.write(to: url)
        XCTAssertEqual(try Checkpoint.format(of: url), .safetensors)
        XCTAssertEqual(try XCTUnwrap(try Checkpoint.load(url)["x"]).toArray(Float.self), [2.5])
    }

    func testTruncatedSafeTensorsThrows() throws {
        let folder = try temporaryFolder()
        let bytes = try Data(contentsOf: try fixture("expected.safetensors"))
        for cut in [4, 100, bytes.count - 1] {
            let url = folder.appendingPathComponent("cut-\(cut).safetensors")
            try bytes.prefix(cut).write(to: url)
            XCTAssertThrowsError(try SafeTensors.read(url)) { error in
                XCTAssertEqual((error as? CheckpointError)?.path, url.path)
            }
        }
    }

    // MARK: real ESPNet weights

    /// The ESPNet release files (legacy layout) match PyTorch's reading of them, recorded in
    /// espnet_checksums.json: names in order, shapes, dtypes, sums, and for a few tensors
    /// the sum of squares and the first values.
    func testESPNetWeightsMatchPyTorch() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let folder = root.appendingPathComponent("../shared/data/weights/espnet").standardizedFileURL
        guard FileManager.default.fileExists(atPath: folder.path) else {
            throw XCTSkip("\(folder.path) is absent; the ESPNet weights are not in this checkout")
        }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: try fixture("espnet_checksums.json")))
        let files = try XCTUnwrap(json as? [String: [String: Any]])
        XCTAssertEqual(files.count, 4)
        for (file, record) in files.sorted(by: { $0.key < $1.key }) {
            let url = folder.appendingPathComponent(file)
            XCTAssertEqual(try Checkpoint.format(of: url), .legacyPickle, file)
            let loaded = try Checkpoint.load(url)
            XCTAssertEqual(loaded.count, try XCTUnwrap(record["count"] as? Int), file)
            let rows = try XCTUnwrap(record["tensors"] as? [[Any]])
            XCTAssertEqual(loaded.names, rows.compactMap { $0.first as? String }, file)
            for row in rows {
                let name = try XCTUnwrap(row[0] as? String)
                let tensor = try XCTUnwrap(loaded[name], name)
                XCTAssertEqual(tensor.shape, row[1] as? [Int], name)
                XCTAssertEqual(tensor.dtype.description, row[2] as? String, name)
                let values = try tensor.toArray(Double.self)
                let scale = max(1, values.reduce(0) { $0 + abs($1) })
                XCTAssertEqual(
                    values.reduce(0, +), try XCTUnwrap(row[3] as? Double), accuracy: 1e-9 * scale, "\(file) \(name)")
            }
            let checksums = try XCTUnwrap(record["checksums"] as? [String: [String: Any]])
            XCTAssertEqual(checksums.count, 4)
            for (name, checksum) in checksums {
                let tensor = try XCTUnwrap(loaded[name], name)
                let values = try tensor.toArray(Double.self)
                let squares = values.reduce(0) { $0 + $1 * $1 }
                XCTAssertEqual(
                    squares, try XCTUnwrap(checksum["sum_of_squares"] as? Double), accuracy: 1e-9 * max(1, squares),
                    name)
                // The weights are float32; compared as such, since Foundation's JSON parser may
                // miss a double's last bit.
                let first = try XCTUnwrap(checksum["first"] as? [Double]).map(Float.init)
                XCTAssertEqual(values.prefix(5).map(Float.init), first, name)
                XCTAssertEqual(tensor.shape, checksum["shape"] as? [Int], name)
            }
        }
    }
}
