/// A mistake the user can fix: one line naming the thing and the fix; `segttt` prints it
/// and exits with status 1.
public struct ToolError: Error, CustomStringConvertible, Equatable {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
