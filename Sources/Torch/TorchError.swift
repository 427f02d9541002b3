internal import CTorch

/// An error raised by libtorch (a shape mismatch, a wrong dtype, an unavailable device),
/// or by this library's own argument checks, carried across the C shim as a Swift error.
public struct TorchError: Error, CustomStringConvertible, Equatable {
    /// libtorch's own message, or this library's.
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// Throws the shim's last error message when `status` is not CT_OK.
@inline(__always)
func check(_ status: ct_status) throws {
    if status != Int32(CT_OK) {
        throw TorchError(String(cString: ct_last_error()))
    }
}

/// Runs a shim call that produces one tensor and wraps its handle.
@inline(__always)
func makeTensor(_ body: (UnsafeMutablePointer<OpaquePointer?>) -> ct_status) throws -> Tensor {
    var out: OpaquePointer?
    try check(body(&out))
    guard let handle = out else { throw TorchError("libtorch returned no tensor") }
    return Tensor(handle: handle)
}
