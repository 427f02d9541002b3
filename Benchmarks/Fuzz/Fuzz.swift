// A libFuzzer target for the readers of untrusted files: the three checkpoint layouts and
// the PNG and JPEG decoders. Built and run by Benchmarks/fuzz.sh, never by a plain
// `swift build` (Package.swift adds this target only when SEGTTT_FUZZ=1): libFuzzer brings
// the program's `main`, and the whole package must be compiled with coverage for it.
//
// SEGTTT_FUZZ_TARGET picks the reader, one per fuzzing process so that each gets its own
// corpus:
//   safetensors    SafeTensors.decode
//   zip            Checkpoint.decode of bytes that start like a zip archive
//   legacy-pickle  Checkpoint.decode of bytes that start like a pickle
//   png            ImageIO.decodeImage, decodeLabel and decodeLabel(channel: 0)
//   jpeg           ImageIO.decodeImage
// Inputs that another reader would take are skipped, so that each run exercises only its own
// (a zip run never reaches the safetensors reader). Any thrown error is a correct outcome; a
// trap, a crash, a hang or an outsized allocation is a finding.
import Foundation
import SegTTT
import TorchNN

enum FuzzTarget: String, CaseIterable {
    case safetensors
    case zip
    case legacyPickle = "legacy-pickle"
    case png
    case jpeg

    static let current: FuzzTarget = {
        let name = ProcessInfo.processInfo.environment["SEGTTT_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            let names = allCases.map(\.rawValue).joined(separator: ", ")
            FileHandle.standardError.write(Data("segttt-fuzz: set SEGTTT_FUZZ_TARGET to one of \(names)\n".utf8))
            exit(2)
        }
        return target
    }()

    func run(_ data: Data) {
        switch self {
        case .safetensors:
            _ = try? SafeTensors.decode(data, path: "input")
        case .zip:
            guard data.starts(with: [0x50, 0x4B, 0x03, 0x04]) else { return }
            _ = try? Checkpoint.decode(data, path: "input")
        case .legacyPickle:
            // A pickle starts with PROTO (0x80); byte 8 a "{" would make it a safetensors header.
            guard data.first == 0x80, data.count <= 8 || data[data.startIndex + 8] != UInt8(ascii: "{") else {
                return
            }
            _ = try? Checkpoint.decode(data, path: "input")
        case .png:
            guard ImageIO.format(of: data) == .png else { return }
            _ = try? ImageIO.decodeImage(data, name: "input")
            _ = try? ImageIO.decodeLabel(data, name: "input")
            _ = try? ImageIO.decodeLabel(data, name: "input", channel: 0)
        case .jpeg:
            guard ImageIO.format(of: data) == .jpeg else { return }
            _ = try? ImageIO.decodeImage(data, name: "input")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let data = Data(bytes: start, count: count)
    FuzzTarget.current.run(data)
    return 0
}
