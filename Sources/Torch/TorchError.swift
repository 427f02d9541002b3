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

/// Throws the shim's last error message when `status` (a `ct_status`) is not CT_OK; for this
/// package's modules over the shim (SegTTT's kernels).
@inline(__always)
package func check(_ status: Int32) throws {
    if status != Int32(CT_OK) {
        throw TorchError(String(cString: ct_last_error()))
    }
}

/// Runs a shim call that produces one tensor and wraps its handle.
@inline(__always)
package func makeTensor(_ body: (UnsafeMutablePointer<OpaquePointer?>) -> Int32) throws -> Tensor {
    var out: OpaquePointer?
    try check(body(&out))
    guard let handle = out else { throw TorchError("libtorch returned no tensor") }
    return Tensor(handle: handle)
}
