// How large the built-in synthetic domain shift is: trains a small ESPNet on the source
// style of SyntheticStreets and evaluates it, frozen, on the source style and on every
// target style.
//
//     swift run -c release synthetic-shift [iterations] [training frames] [learning rate]
//
// Defaults: 600 iterations of batch 8 on 400 source frames (seed 1), lr 0.1; evaluation on
// 100 frames per style (seed 2). Prints mIoU and per-class IoU per style, and the drop.
import Foundation
import SegTTT
import Torch

func run() throws {
    let arguments = CommandLine.arguments
    let iterations = arguments.count > 1 ? Int(arguments[1]) ?? 600 : 600
    let trainingFrames = arguments.count > 2 ? Int(arguments[2]) ?? 400 : 400
    let learningRate = arguments.count > 3 ? Double(arguments[3]) ?? 0.1 : 0.1

    let training = try InMemoryDataset(SyntheticStreets(style: .source, count: trainingFrames, seed: 1))
    let model = try ESPNet(outputs: 8, p: 1, q: 1, generator: Generator(seed: 0))
    let config = SourceTrainingConfig(iterations: iterations, batchSize: 8, learningRate: learningRate, seed: 0)
    let started = Date()
    try trainSource(model, on: training, config: config) { iteration, loss in
        if (iteration + 1) % 100 == 0 { print(String(format: "iteration %d  loss %.4f", iteration + 1, loss)) }
    }
    print(String(format: "trained in %.1f s", Date().timeIntervalSince(started)))

    let mapping = ClassMapping.identity(classes: 8, outputs: 8)
    var sourceIoU = 0.0
    var drops: [Double] = []
    for style in StreetStyle.allCases {
        let matrix = try evaluateFrozen(
            model, on: SyntheticStreets(style: style, count: 100, seed: 2), mapping: mapping)
        let miou = matrix.meanIoU * 100
        if style == .source { sourceIoU = miou } else { drops.append(sourceIoU - miou) }
        let perClass = matrix.iouPerClass.map { $0.map { String(format: "%.0f", $0 * 100) } ?? "-" }
        print(
            "\(style.rawValue)\tmIoU \(String(format: "%.1f", miou))\tdrop \(String(format: "%.1f", sourceIoU - miou))"
                + "\t[\(perClass.joined(separator: " "))]")
    }
    print(String(format: "mean drop over the target styles: %.1f", drops.reduce(0, +) / Double(drops.count)))
}

// libtorch's threads on every core; IEEE arithmetic, as the figures were measured.
Runtime.configure(Runtime.Settings(flushDenormals: false))
do {
    try run()
} catch {
    FileHandle.standardError.write("synthetic-shift: \(error)\n".data(using: .utf8) ?? Data())
    exit(1)
}
