internal import CTorch

/// Reverse-mode differentiation, as torch.autograd.
extension Tensor {
    /// Whether operations on this tensor are recorded for `backward()`.
    public var requiresGrad: Bool {
        var flag = false
        _ = ct_requires_grad(handle, &flag)
        return flag
    }

    /// Marks this tensor (a leaf) as one whose gradient `backward()` accumulates; returns self.
    @discardableResult
    public func requiresGrad(_ flag: Bool) throws -> Tensor {
        try check(ct_set_requires_grad(handle, flag))
        return self
    }

    /// Accumulates d(self)/d(leaf) * `gradient` into the `grad` of every leaf that requires it.
    /// `gradient` may be omitted for a one-element tensor.
    public func backward(_ gradient: Tensor? = nil, retainGraph: Bool = false) throws {
        try withExtendedLifetime(gradient) {
            try check(ct_backward(handle, gradient?.handle, retainGraph))
        }
    }

    /// The gradient accumulated by `backward()`, or nil when there is none.
    public var grad: Tensor? {
        var out: OpaquePointer?
        guard ct_grad(handle, &out) == Int32(CT_OK), let out else { return nil }
        return Tensor(handle: out)
    }

    /// Drops the accumulated gradient (as `zero_grad(set_to_none=True)`).
    public func zeroGrad() throws {
        try check(ct_zero_grad(handle))
    }

    /// The same storage, cut off from the autograd graph.
    public func detach() throws -> Tensor {
        try makeTensor { ct_detach(handle, $0) }
    }
}

/// Whether autograd records operations on this thread.
public var isGradEnabled: Bool { ct_grad_enabled() }

/// Runs `body` with autograd recording off on this thread (as `torch.no_grad()`), then
/// restores the previous mode.
public func withNoGrad<R>(_ body: () throws -> R) rethrows -> R {
    try withGradMode(false, body)
}

/// Runs `body` with autograd recording on on this thread (as `torch.enable_grad()`), then
/// restores the previous mode.
public func withGrad<R>(_ body: () throws -> R) rethrows -> R {
    try withGradMode(true, body)
}

private func withGradMode<R>(_ enabled: Bool, _ body: () throws -> R) rethrows -> R {
    let previous = ct_grad_enabled()
    ct_set_grad_enabled(enabled)
    defer { ct_set_grad_enabled(previous) }
    return try body()
}

/// In-place updates (the trailing underscore is PyTorch's mark for them). They change the
/// storage every view of it sees; on a leaf that requires grad, run them inside `withNoGrad`.
extension Tensor {
    /// self += alpha * other
    public func add_(_ other: Tensor, alpha: Double = 1) throws {
        try check(ct_add_(handle, other.handle, alpha))
    }

    /// self *= s
    public func mul_(_ s: Double) throws {
        try check(ct_mul_scalar_(handle, s))
    }

    /// self += value * a * b
    public func addcmul_(_ a: Tensor, _ b: Tensor, value: Double = 1) throws {
        try check(ct_addcmul_(handle, a.handle, b.handle, value))
    }

    /// self += value * a / b
    public func addcdiv_(_ a: Tensor, _ b: Tensor, value: Double = 1) throws {
        try check(ct_addcdiv_(handle, a.handle, b.handle, value))
    }

    /// Copies `source`'s values (broadcast, converted) into self.
    public func copy_(_ source: Tensor) throws {
        try check(ct_copy_(handle, source.handle))
    }

    /// self = max(self, 0), returning self. Inside a differentiable forward this is safe only on
    /// a fresh intermediate that its producer does not keep for the backward (a convolution's
    /// or a batch norm's output, say); autograd rejects the backward otherwise.
    @discardableResult
    public func relu_() throws -> Tensor {
        try check(ct_relu_(handle))
        return self
    }

    public func zero_() throws {
        try check(ct_zero_(handle))
    }

    public func fill_(_ value: Double) throws {
        try check(ct_fill_(handle, value))
    }
}
