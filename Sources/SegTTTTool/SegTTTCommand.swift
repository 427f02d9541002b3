import ArgumentParser
import Foundation
import Torch

/// The `segttt` command: test-time adaptation of segmentation networks.
public struct SegTTTCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "segttt",
        abstract: "Test-time adaptation of semantic segmentation networks (OCL and its baselines).",
        discussion: "New here? `segttt demo` adapts a built-in model to built-in shifted streets in a few minutes.",
        subcommands: [Demo.self, Adapt.self, Compare.self, Sweep.self, Merge.self, Train.self, Info.self])

    public init() {}

    /// Runs the command line, as `main()` does, under `MemoryCap`, once every argument is
    /// valid UTF-8: Swift
    /// decodes arguments and file names as UTF-8, so a path in another encoding (which Linux
    /// allows) would otherwise be reported as missing although it exists.
    public static func start() {
        for index in 1..<Int(CommandLine.argc) {
            guard let argument = CommandLine.unsafeArgv[index], String(validatingCString: argument) == nil else {
                continue
            }
            let shown = String(cString: argument)
            FileHandle.standardError.write(
                Data(
                    ("Error: argument \(index) ('\(shown)', � marking the bytes) is not valid UTF-8; segttt reads "
                        + "names as UTF-8: rename the file, e.g. convmv -f latin1 -t utf8 --notest NAME\n").utf8))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        }
        MemoryCap.apply(arguments: CommandLine.arguments)
        // The process settings every command computes under; `adapt` and `train` apply them
        // again with their --threads and --flush-denormals.
        Runtime.configure()
        main()
    }

    /// With no subcommand: the overview and where to start.
    public func run() throws {
        print(Self.helpMessage())
        print("\nStart with:  segttt demo")
    }
}
