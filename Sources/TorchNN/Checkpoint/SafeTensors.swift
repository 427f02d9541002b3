import Foundation
import Torch

/// The safetensors format (Hugging Face): an 8-byte little-endian header length N, N bytes
/// of JSON mapping each name to `{dtype, shape, data_offsets: [begin, end]}` (offsets into
/// the data section that follows), and an optional `__metadata__` map of strings.
public enum SafeTensors {
    static let dtypeNames: [DType: String] = [
        .float64: "F64", .float32: "F32", .float16: "F16", .bfloat16: "BF16", .int64: "I64", .int32: "I32",
        .int16: "I16", .int8: "I8", .uint8: "U8", .bool: "BOOL",
    ]

    /// Reads every tensor of a safetensors file, in the order of their data.
    public static func read(_ url: URL) throws -> (tensors: StateDict, metadata: [String: String]) {
        let path = url.path
        if let problem = FileFailure.notAFile(url) {
            throw CheckpointError(path: path, reason: "\(problem); give a safetensors file")
        }
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw CheckpointError(path: path, reason: "cannot be read (\(FileFailure.reason(error))); check the path")
        }
        return try decode(data, path: path)
    }

    /// Decodes the bytes of a safetensors file; `path` names it in errors.
    public static func decode(_ data: Data, path: String) throws -> (tensors: StateDict, metadata: [String: String]) {
        func fail(_ reason: String) -> CheckpointError {
            CheckpointError(path: path, reason: "not a valid safetensors file: \(reason)")
        }
        guard data.count >= 8 else { throw fail("shorter than its 8-byte header length") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) {
            $0 | UInt64($1.element) << (8 * UInt64($1.offset))
        }
        guard headerLength <= UInt64(data.count - 8) else {
            throw fail("the header claims \(headerLength) bytes but the file has \(data.count); it may be truncated")
        }
        let headerEnd = 8 + Int(headerLength)
        let header = data.subdata(in: data.startIndex + 8..<data.startIndex + headerEnd)
        guard let json = try? JSONSerialization.jsonObject(with: header), let entries = json as? [String: Any] else {
            throw fail("its header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var records: [(name: String, dtype: DType, shape: [Int], begin: Int, end: Int)] = []
        for (name, value) in entries {
            if name == "__metadata__" {
                metadata = (value as? [String: String]) ?? [:]
                continue
            }
            guard let info = value as? [String: Any], let code = info["dtype"] as? String,
                let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2
            else { throw fail("entry '\(name)' lacks dtype, shape or data_offsets") }
            guard let dtype = dtypeNames.first(where: { $0.value == code })?.key else {
                throw fail("tensor '\(name)' has unsupported dtype \(code)")
            }
            guard shape.allSatisfy({ $0 >= 0 }) else {
                throw fail("tensor '\(name)' has shape \(shape); sizes cannot be negative")
            }
            // Sizes and offsets come from the file: every product and sum is checked.
            guard let expected = ([dtype.byteSize] + shape).checkedProduct() else {
                throw fail("tensor '\(name)' of shape \(shape) is too large for any file")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, end >= begin, end <= data.count - headerEnd else {
                throw fail("tensor '\(name)' lies outside the file (offsets \(begin)..<\(end)); it may be truncated")
            }
            guard end - begin == expected else {
                throw fail(
                    "tensor '\(name)' of shape \(shape) and dtype \(code) needs \(expected) bytes, has \(end - begin)")
            }
            records.append((name, dtype, shape, begin, end))
        }
        records.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        // As in the reference reader, the tensors tile the data section: each begins where the
        // one before it ends, so no byte is read for two tensors and none is left unread.
        var covered = 0
        for record in records {
            guard record.begin == covered else {
                let what = record.begin < covered ? "overlaps the tensor before it" : "leaves a gap before it"
                throw fail("tensor '\(record.name)' at offsets \(record.begin)..<\(record.end) \(what)")
            }
            covered = record.end
        }
        guard covered == data.count - headerEnd else {
            throw fail("\(data.count - headerEnd - covered) bytes after the last tensor belong to none")
        }
        var tensors = StateDict()
        for record in records {
            let start = data.startIndex + headerEnd + record.begin
            let bytes = data[start..<start + (record.end - record.begin)]
            tensors[record.name] = try bytes.withUnsafeBytes { raw in
                try Tensor(bytes: raw, shape: record.shape, dtype: record.dtype)
            }
        }
        return (tensors, metadata)
    }

    /// Encodes tensors (moved to the CPU, laid out densely) in the state dict's order.
    public static func encode(_ tensors: StateDict, metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var body = Data()
        for (name, tensor) in tensors {
            guard let code = dtypeNames[tensor.dtype] else {
                throw TorchError("tensor '\(name)' has dtype \(tensor.dtype), which safetensors cannot hold")
            }
            let bytes = try tensor.contiguousBytes()
            header[name] = [
                "dtype": code, "shape": tensor.shape, "data_offsets": [body.count, body.count + bytes.count],
            ]
            body.append(contentsOf: bytes)
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        var file = Data(capacity: 8 + json.count + body.count)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(json)
        file.append(body)
        return file
    }

    /// Writes tensors to a safetensors file, atomically (a partly written file never replaces a good one).
    public static func write(_ tensors: StateDict, to url: URL, metadata: [String: String] = [:]) throws {
        let data = try encode(tensors, metadata: metadata)
        do {
            try data.write(to: url, options: .atomic)
        } catch {
            throw CheckpointError(path: url.path, reason: "cannot be written (\(FileFailure.reason(error)))")
        }
    }
}
