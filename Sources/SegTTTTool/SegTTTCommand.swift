import ArgumentParser

/// The `segttt` command: test-time adaptation of segmentation networks.
public struct SegTTTCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "segttt",
        abstract: "Test-time adaptation of semantic segmentation networks (OCL and its baselines).",
        discussion: "New here? `segttt demo` adapts a built-in model to built-in shifted streets in a few minutes.",
        subcommands: [Demo.self, Adapt.self, Compare.self, Train.self, Info.self])

    public init() {}

    /// With no subcommand: the overview and where to start.
    public func run() throws {
        print(Self.helpMessage())
        print("\nStart with:  segttt demo")
    }
}
