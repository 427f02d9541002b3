import Torch

/// Modules applied one after another, `torch.nn.Sequential`; children are named "0", "1", ...
public final class Sequential: Module, UnaryModule {
    public let layers: [any UnaryModule]

    public init(_ layers: [any UnaryModule]) {
        self.layers = layers
        super.init()
        for (index, layer) in layers.enumerated() { register(String(index), layer) }
    }

    public convenience init(_ layers: any UnaryModule...) {
        self.init(layers)
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        try layers.reduce(input) { try $1.forward($0) }
    }
}
