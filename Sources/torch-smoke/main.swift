// A short end-to-end run of the foundation, until the `segttt` tool exists: the libtorch
// runtime, a small convolutional network trained for a few SGD steps on a seeded
// segmentation-like task (the loss must fall), and the ESPNet checkpoints of ../shared/data
// read without Python when that folder is there.
//
//     swift run torch-smoke [path/to/shared/data]
import Foundation
import Torch
import TorchNN

/// Two 3x3 convolutions with BatchNorm and PReLU, then a 1x1 classifier: [N, 3, H, W] -> [N, K, H, W].
final class TinySegmenter: Module, UnaryModule {
    let body: Sequential
    let classifier: Conv2d

    init(classes: Int, generator: Generator) throws {
        body = Sequential(
            try Conv2d(3, 16, kernelSize: 3, padding: 1, bias: false, generator: generator),
            try BatchNorm2d(16),
            try PReLU(16),
            try Conv2d(16, 16, kernelSize: 3, padding: 2, dilation: 2, bias: false, generator: generator),
            try BatchNorm2d(16),
            try PReLU(16)
        )
        classifier = try Conv2d(16, classes, kernelSize: 1, generator: generator)
        super.init()
        register("body", body)
        register("classifier", classifier)
    }

    func forward(_ input: Tensor) throws -> Tensor {
        try classifier(body(input))
    }
}

func run() throws {
    print(
        "libtorch \(Runtime.libtorchVersion), \(Runtime.numThreads) threads, CUDA available: \(Device.isCUDAAvailable)")

    // A seeded task: the label of a pixel is the colour channel that is brightest there.
    let generator = try Generator(seed: 0)
    let images = try Tensor.uniform([4, 3, 32, 32], generator: generator)
    let labels = try images.argmax(dim: 1)
    let net = try TinySegmenter(classes: 3, generator: generator)
    let sgd = try SGD(net.trainableParameters(), learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4)
    var losses: [Double] = []
    for _ in 0..<30 {
        try sgd.zeroGrad()
        let loss = try crossEntropy(net(images), target: labels)
        try loss.backward()
        try sgd.step()
        losses.append(try loss.item())
    }
    net.eval()
    let accuracy = try withNoGrad { try net(images).argmax(dim: 1).eq(labels).to(.float32).mean().item() }
    print(
        String(
            format: "tiny segmenter: loss %.3f -> %.3f over 30 SGD steps, pixel accuracy %.1f%%",
            losses[0], losses[losses.count - 1], accuracy * 100))

    let shared = CommandLine.arguments.dropFirst().first ?? "../shared/data"
    let folder = URL(fileURLWithPath: shared).appendingPathComponent("weights/espnet")
    let files =
        (try? FileManager.default.contentsOfDirectory(atPath: folder.path))?.filter { $0.hasSuffix(".pth") }.sorted()
        ?? []
    if files.isEmpty {
        print("no ESPNet checkpoints under \(folder.path); skipping the checkpoint check")
    }
    for file in files {
        let url = folder.appendingPathComponent(file)
        let state = try Checkpoint.load(url)
        let parameters = state.reduce(0) { $0 + $1.tensor.count }
        print("\(file): \(try Checkpoint.format(of: url)), \(state.count) tensors, \(parameters) values")
    }
}

do {
    try run()
} catch {
    FileHandle.standardError.write("torch-smoke: \(error)\n".data(using: .utf8) ?? Data())
    exit(1)
}
