import Foundation
import SegTTT
import TorchNN

/// A run's saved states in its output folder: `state.safetensors`, the newest, and
/// `state.previous.safetensors`, the one before it. A save first moves the newest aside,
/// so whatever kills the process, one complete state remains; a resume takes the newest
/// readable one.
struct RunState {
    let folder: URL

    var newest: URL { folder.appendingPathComponent("state.safetensors") }
    var previous: URL { folder.appendingPathComponent("state.previous.safetensors") }

    /// Whether the folder holds a saved state.
    var exists: Bool {
        [newest, previous].contains { FileManager.default.fileExists(atPath: $0.path) }
    }

    /// Saves the runner's state as the newest, keeping the one it replaces as the previous.
    func save(_ runner: Runner) throws {
        let files = FileManager.default
        if files.fileExists(atPath: newest.path) {
            do {
                if files.fileExists(atPath: previous.path) { try files.removeItem(at: previous) }
                try files.moveItem(at: newest, to: previous)
            } catch {
                throw ToolError("\(newest.path) cannot be kept as the previous state (\(FileFailure.reason(error)))")
            }
        }
        try runner.save(to: newest)
    }

    /// Restores the newest readable state into `runner`; an unreadable newest state is deleted
    /// once the previous one is restored, so that the next save keeps a good one.
    ///
    /// - Returns: a note for the user when the newest state was missing or unreadable and the
    ///   previous one was taken.
    /// - Throws: `ToolError` when neither state can be read, naming the files to delete so
    ///   that `--resume` starts the run over.
    func resume(_ runner: Runner) throws -> String? {
        let files = FileManager.default
        var failure: String?
        if files.fileExists(atPath: newest.path) {
            do {
                try runner.resume(from: newest)
                return nil
            } catch {
                failure = "\(error)"
            }
        }
        guard files.fileExists(atPath: previous.path) else {
            throw ToolError(
                "\(failure ?? "\(newest.path) is missing"); delete it and run again with --resume to start "
                    + "the stream over, or choose another --output")
        }
        do {
            try runner.resume(from: previous)
            if files.fileExists(atPath: newest.path) { try files.removeItem(at: newest) }
        } catch {
            throw ToolError(
                "\(failure ?? "\(newest.path) is missing"), and so is the previous state (\(error)); delete "
                    + "both and run again with --resume to start the stream over, or choose another --output")
        }
        let what = failure.map { "\($0); it is deleted" } ?? "\(newest.path) is missing"
        return "note: \(what), and the run resumes from the state saved before it (frame \(runner.position))"
    }
}
