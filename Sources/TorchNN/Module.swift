import Torch

/// A learnable tensor of a module. Loading a checkpoint or restoring a snapshot changes its
/// values in place, so optimizers and views keep pointing at the same storage.
public final class Parameter {
    /// The values; a leaf of the autograd graph that requires grad unless frozen.
    public private(set) var value: Tensor

    public init(_ value: Tensor, trainable: Bool = true) throws {
        self.value = value
        if value.dtype.isFloatingPoint { try value.requiresGrad(trainable) }
    }

    /// Whether the optimizer should update it (its tensor requires grad).
    public var isTrainable: Bool { value.requiresGrad }

    /// Makes the parameter trainable or frozen.
    public func setTrainable(_ trainable: Bool) throws {
        try value.requiresGrad(trainable)
    }

    /// Moves the values to `device`, keeping the trainable flag.
    func move(to device: Device) throws {
        guard value.device != device else { return }
        let trainable = isTrainable
        value = try withNoGrad { try value.to(device: device) }
        try value.requiresGrad(trainable)
    }
}

/// A tensor of a module's state that is not learned (BatchNorm's running statistics).
public final class Buffer {
    public private(set) var value: Tensor
    /// Whether a checkpoint may lack it (PyTorch added BatchNorm's `num_batches_tracked` in
    /// 0.4.1; older checkpoints, ESPNet's and DeepLab's among them, have none).
    public let isOptionalInCheckpoint: Bool

    public init(_ value: Tensor, optionalInCheckpoint: Bool = false) {
        self.value = value
        self.isOptionalInCheckpoint = optionalInCheckpoint
    }

    func move(to device: Device) throws {
        guard value.device != device else { return }
        value = try value.to(device: device)
    }
}

/// The base of every network part: holds named parameters, buffers and child modules, in
/// registration order, so that `stateDict()` names them exactly as PyTorch does
/// (`parent.child.weight`), and carries the training/evaluation mode.
open class Module {
    public private(set) var ownParameters: [(name: String, parameter: Parameter)] = []
    public private(set) var ownBuffers: [(name: String, buffer: Buffer)] = []
    public private(set) var children: [(name: String, module: Module)] = []
    /// Training mode (BatchNorm uses batch statistics) or evaluation mode.
    public private(set) var isTraining = true

    public init() {}

    /// Registers a child module under `name` (a Python attribute name, or "0", "1", ... in a
    /// Sequential) and returns it.
    @discardableResult
    public func register<M: Module>(_ name: String, _ module: M) -> M {
        children.append((name, module))
        return module
    }

    /// Registers a parameter under `name` and returns it.
    @discardableResult
    public func registerParameter(_ name: String, _ tensor: Tensor, trainable: Bool = true) throws -> Parameter {
        let parameter = try Parameter(tensor, trainable: trainable)
        registerParameter(name, parameter)
        return parameter
    }

    /// Registers an existing parameter under `name`.
    public func registerParameter(_ name: String, _ parameter: Parameter) {
        ownParameters.append((name, parameter))
    }

    /// Registers a buffer under `name` and returns it.
    @discardableResult
    public func registerBuffer(_ name: String, _ tensor: Tensor, optionalInCheckpoint: Bool = false) -> Buffer {
        let buffer = Buffer(tensor, optionalInCheckpoint: optionalInCheckpoint)
        registerBuffer(name, buffer)
        return buffer
    }

    /// Registers an existing buffer under `name`.
    public func registerBuffer(_ name: String, _ buffer: Buffer) {
        ownBuffers.append((name, buffer))
    }

    // MARK: traversal

    /// This module and every descendant, depth first, with dotted names ("" for self).
    public func namedModules(prefix: String = "") -> [(name: String, module: Module)] {
        var result: [(name: String, module: Module)] = [(prefix, self)]
        for (name, child) in children {
            result += child.namedModules(prefix: prefix.isEmpty ? name : prefix + "." + name)
        }
        return result
    }

    /// Every parameter of this module and its descendants, with dotted names.
    public func namedParameters() -> [(name: String, parameter: Parameter)] {
        namedModules().flatMap { entry in
            entry.module.ownParameters.map { (Module.join(entry.name, $0.name), $0.parameter) }
        }
    }

    /// Every buffer of this module and its descendants, with dotted names.
    public func namedBuffers() -> [(name: String, buffer: Buffer)] {
        namedModules().flatMap { entry in
            entry.module.ownBuffers.map { (Module.join(entry.name, $0.name), $0.buffer) }
        }
    }

    /// The parameters that require grad (what an optimizer updates).
    public func trainableParameters() -> [Parameter] {
        namedParameters().map(\.parameter).filter(\.isTrainable)
    }

    static func join(_ prefix: String, _ name: String) -> String {
        prefix.isEmpty ? name : prefix + "." + name
    }

    // MARK: modes

    /// Sets training mode (or evaluation mode with `false`) here and in every descendant.
    open func train(_ mode: Bool = true) {
        for (_, module) in namedModules() { module.isTraining = mode }
    }

    /// Evaluation mode, as `train(false)`.
    public func eval() {
        train(false)
    }

    /// Makes every parameter here and below frozen (no gradient, not updated).
    public func freeze() throws {
        for (_, parameter) in namedParameters() { try parameter.setTrainable(false) }
    }

    /// Makes every parameter here and below trainable.
    public func unfreeze() throws {
        for (_, parameter) in namedParameters() { try parameter.setTrainable(true) }
    }

    /// Moves every parameter and buffer to `device`.
    open func move(to device: Device) throws {
        for (_, parameter) in namedParameters() { try parameter.move(to: device) }
        for (_, buffer) in namedBuffers() { try buffer.move(to: device) }
    }

    // MARK: state

    /// Parameters and buffers by name, in PyTorch's order: each module's own parameters,
    /// then its own buffers, then its children's. The tensors are the module's own (not copies).
    public func stateDict() -> StateDict {
        var dict = StateDict()
        for (prefix, module) in namedModules() {
            for (name, parameter) in module.ownParameters { dict[Module.join(prefix, name)] = parameter.value }
            for (name, buffer) in module.ownBuffers { dict[Module.join(prefix, name)] = buffer.value }
        }
        return dict
    }
}

/// A module that maps one tensor to one tensor.
public protocol UnaryModule: Module {
    func forward(_ input: Tensor) throws -> Tensor
}

extension UnaryModule {
    public func callAsFunction(_ input: Tensor) throws -> Tensor {
        try forward(input)
    }
}
