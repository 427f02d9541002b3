import Torch
import TorchNN

/// The network of Scripts/fixtures/nn.py, layer for layer and name for name.
final class SmallNet: Module, UnaryModule {
    let features: Sequential
    let head: Conv2d
    let up: ConvTranspose2d
    let pool: AvgPool2d

    init(generator: Generator? = nil) throws {
        features = Sequential(
            try Conv2d(3, 8, kernelSize: 3, padding: 1, bias: false, generator: generator),
            try BatchNorm2d(8),
            try PReLU(8),
            try Conv2d(8, 8, kernelSize: 3, padding: 2, dilation: 2, groups: 2, generator: generator),
            try BatchNorm2d(8, eps: 1e-3),
            ReLU(),
            MaxPool2d(kernelSize: 3, stride: 2, padding: 1, ceilMode: true)
        )
        head = try Conv2d(8, 5, kernelSize: 1, generator: generator)
        up = try ConvTranspose2d(5, 5, kernelSize: 2, stride: 2, bias: false, generator: generator)
        pool = AvgPool2d(kernelSize: 3, stride: 1, padding: 1, countIncludePad: false)
        super.init()
        register("features", features)
        register("head", head)
        register("up", up)
        register("pool", pool)
    }

    func forward(_ x: Tensor) throws -> Tensor {
        let y = try pool(up(head(features(x))))
        let size = x.shape
        return try interpolate(y, size: Pair(size[2], size[3]), mode: .bilinear(alignCorners: true))
    }

    var batchNorms: [BatchNorm2d] { namedModules().compactMap { $0.module as? BatchNorm2d } }
}
