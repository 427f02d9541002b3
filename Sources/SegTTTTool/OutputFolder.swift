import Foundation
import TorchNN

/// The folder a command writes its results into, checked before any work starts: a long run
/// must not end by finding that it cannot write.
enum OutputFolder {
    /// Creates `url` (and its parents) when missing and checks that files can be created in it.
    ///
    /// - Throws: `ToolError` naming `flag` and the folder, in plain words (a file in the way,
    ///   no permission, a full or read-only disk).
    static func prepare(_ url: URL, flag: String) throws {
        let files = FileManager.default
        try refuseFile(url, flag: flag)
        do {
            try files.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw ToolError(
                "\(flag) \(url.path): the folder cannot be created (\(FileFailure.reason(error))); "
                    + "choose a folder you can write")
        }
        let probe = url.appendingPathComponent(".segttt-write-check-\(getpid())")
        guard files.createFile(atPath: probe.path, contents: Data()) else {
            let reason = errno == 0 ? "files cannot be created there" : String(cString: strerror(errno)).lowercased()
            throw ToolError("\(flag) \(url.path) is not writable (\(reason)); choose a folder you can write")
        }
        try? files.removeItem(at: probe)
    }

    /// Refuses `url` when a file (not a folder) is there; nothing is created.
    static func refuseFile(_ url: URL, flag: String) throws {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder), !isFolder.boolValue {
            throw ToolError("\(flag) \(url.path) is a file, not a folder; choose a folder (it is created when missing)")
        }
    }

    /// Removes the temporary files that a process killed while writing a file atomically leaves
    /// in `folder` (Foundation names them .dat.nosync*); returns how many there were.
    @discardableResult
    static func removeInterruptedWrites(in folder: URL) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        let leftovers = names.filter { $0.hasPrefix(".dat.nosync") }
        for name in leftovers { try? FileManager.default.removeItem(at: folder.appendingPathComponent(name)) }
        return leftovers.count
    }
}
