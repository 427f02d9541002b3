import ArgumentParser
import Dispatch
import Foundation
import Synchronization

/// SIGINT (Ctrl-C) and SIGTERM (a scheduler's stop) turned into a request that a run honours
/// between frames: it saves its state, says how to resume, and exits with 128 + the signal's
/// number, as a shell expects. A second signal ends the process at once.
final class InterruptionWatch: @unchecked Sendable {
    private let received = Atomic<Int32>(0)
    private var sources: [DispatchSourceSignal] = []
    private static let signals = [SIGINT, SIGTERM]

    /// Starts watching; the signals' default handling is restored when the watch is released.
    init() {
        for number in Self.signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [unowned self] in
                if self.received.exchange(number, ordering: .relaxed) != 0 {
                    signal(number, SIG_DFL)
                    raise(number)
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    deinit {
        for source in sources { source.cancel() }
        for number in Self.signals { signal(number, SIG_DFL) }
    }

    /// The signal received, if any.
    var receivedSignal: Int32? {
        let number = received.load(ordering: .relaxed)
        return number == 0 ? nil : number
    }

    /// The signal's name for messages.
    static func name(_ number: Int32) -> String {
        number == SIGINT ? "SIGINT (Ctrl-C)" : number == SIGTERM ? "SIGTERM" : "signal \(number)"
    }
}

/// A run stopped by a signal once its state was saved.
struct Interrupted: Error, CustomStringConvertible {
    let signal: Int32
    let output: URL
    /// Frames done (and saved).
    let frame: Int

    var description: String {
        "stopped by \(InterruptionWatch.name(signal)) after \(frame) frame(s); the state is saved in "
            + "\(output.path): run the same command with --resume to continue"
    }

    /// Runs `body`; an interruption is reported on standard error and ends the command with
    /// the status 128 + the signal's number.
    static func exitingOnSignal(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let interrupted as Interrupted {
            FileHandle.standardError.write(Data("\(interrupted)\n".utf8))
            throw ExitCode(128 + interrupted.signal)
        }
    }
}
