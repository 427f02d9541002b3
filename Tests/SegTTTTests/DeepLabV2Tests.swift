import Foundation
import SegTTT
import SegTTTKernels
import TestSupport
import Torch
import TorchNN
import XCTest

/// DeepLabV2 "DeeplabMulti" against PyTorch (Scripts/fixtures/deeplab.py): names, seeded
/// weights drawn bit for bit as PyTorch draws them, both heads' outputs for four backbones
/// and both classifier variants, output stride, BatchNorm freezing, and checkpoint loading
/// (a `module.`-prefixed training checkpoint, inference of backbone and classes, and the
/// errors for checkpoints that do not fit).
final class DeepLabV2Tests: ConfiguredTestCase {
    /// Classes of the fixture's networks.
    private let numClasses = 5
    /// The generator seed of each backbone in the fixture script.
    private let seeds: [ResNetDepth: UInt64] = [.resnet18: 18, .resnet34: 34, .resnet50: 50, .resnet101: 101]

    // MARK: parity with PyTorch

    func testResNet18NamesWeightsAndOutputsMatchPyTorch() throws {
        try checkParity(
            .resnet18, cases: [("published", "a"), ("published", "b"), ("fourBranch", "a")],
            pinned: ["conv1.weight", "layer6.conv2d_list.3.bias", "layer4.1.bn2.running_var"])
    }

    func testResNet34And50MatchPyTorch() throws {
        try checkParity(.resnet34, cases: [("published", "b")], pinned: [])
        try checkParity(.resnet50, cases: [("published", "b")], pinned: [])
    }

    func testResNet101NamesWeightsAndOutputsMatchPyTorch() throws {
        try checkParity(
            .resnet101, cases: [("published", "a"), ("fourBranch", "a")],
            pinned: ["layer5.conv2d_list.0.bias", "layer4.2.bn3.running_var"])
    }

    /// Builds `depth` as the script does, then compares names (and order), a few weights
    /// exactly (as drawn), and, after rescaling the convolutions, the output stride and the
    /// main and auxiliary outputs of each (classifier, input) case.
    private func checkParity(
        _ depth: ResNetDepth, cases: [(classifier: String, input: String)], pinned: [String],
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let (fixture, metadata) = try loadDeepLabFixture()
        let model = try makeFixtureModel(depth)
        let state = model.stateDict()
        let expectedNames = try XCTUnwrap(metadata["names.\(depth)"], file: file, line: line)
        XCTAssertEqual(
            state.names.joined(separator: ","), expectedNames, "\(depth) state-dict names", file: file, line: line)
        for name in pinned {
            try assertAllClose(state[name], fixture["\(depth).init.\(name)"], relative: 0, "\(depth) drew \(name)")
        }
        try rescaleConvolutions(model)
        try withNoGrad {
            let input = try XCTUnwrap(fixture["input.\(cases[0].input)"])
            let (main, auxiliary) = try model.lowResolutionLogits(input)
            let size = DeepLabV2.featureSize(forInput: Pair(input.shape[2], input.shape[3]))
            XCTAssertEqual(
                main.shape, [1, numClasses, size.height, size.width], "\(depth) output stride", file: file, line: line)
            XCTAssertEqual(auxiliary.shape, main.shape, "\(depth) output stride", file: file, line: line)
            for (classifier, input) in cases {
                model.classifier = try XCTUnwrap(DeepLabV2.ClassifierBranches(rawValue: classifier))
                let (main, auxiliary) = try model(try XCTUnwrap(fixture["input.\(input)"]))
                let key = "\(depth).\(classifier).\(input)"
                try assertAllClose(main, fixture[key + ".main"], relative: 1e-4, key + ".main", file: file, line: line)
                try assertAllClose(
                    auxiliary, fixture[key + ".aux"], relative: 1e-4, key + ".aux", file: file, line: line)
            }
        }
    }

    /// The fixture's network: the published initialisation from the backbone's seed, then, on
    /// the same stream, every BatchNorm's weight, bias, running mean and variance; evaluation mode.
    private func makeFixtureModel(_ depth: ResNetDepth) throws -> DeepLabV2 {
        let generator = try Generator(seed: try XCTUnwrap(seeds[depth]))
        let model = try DeepLabV2(
            .init(backbone: depth, numClasses: numClasses), generator: generator)
        try withNoGrad {
            for bn in model.batchNormLayers {
                let shape = bn.runningMean.value.shape
                try XCTUnwrap(bn.weight).value.copy_(Tensor.uniform(shape, low: 0.5, high: 1.5, generator: generator))
                try XCTUnwrap(bn.bias).value.copy_(Tensor.uniform(shape, low: -0.2, high: 0.2, generator: generator))
                try bn.runningMean.value.copy_(Tensor.uniform(shape, low: -0.1, high: 0.1, generator: generator))
                try bn.runningVar.value.copy_(Tensor.uniform(shape, low: 0.5, high: 1.5, generator: generator))
            }
        }
        model.eval()
        return model
    }

    /// Every conv weight times 100 / sqrt(fanIn), as the script does, so that the residual
    /// branches (not only the BatchNorm biases) shape the logits.
    private func rescaleConvolutions(_ model: DeepLabV2) throws {
        try withNoGrad {
            for case let conv as Conv2d in model.namedModules().map(\.module) {
                try conv.weight.value.mul_(100 / Double(Initialization.fanIn(conv.weight.value.shape)).squareRoot())
            }
        }
    }

    func testFreshWeightsFollowThePublishedInitialisation() throws {
        let model = try DeepLabV2(.init(backbone: .resnet18, numClasses: numClasses), generator: Generator(seed: 3))
        XCTAssertTrue(model.isTraining, "a fresh model starts in training mode, as in PyTorch")
        for (name, parameter) in model.namedParameters() {
            let value = parameter.value
            if name.contains("conv2d_list") && name.hasSuffix("bias") {
                // U(-1/sqrt(fanIn), 1/sqrt(fanIn)), fanIn = channels * 9.
                let bound = 1 / (Double(name.hasPrefix("layer6") ? 512 : 256) * 9).squareRoot()
                XCTAssertLessThanOrEqual(try value.abs().amax().item(), bound, name)
            } else if value.rank == 1 {
                // BatchNorm: weight 1, bias 0.
                let expected: Double = name.hasSuffix("weight") ? 1 : 0
                XCTAssertEqual(try value.amin().item(), expected, name)
                XCTAssertEqual(try value.amax().item(), expected, name)
            } else if value.count > 1000 {
                XCTAssertEqual(
                    try value.var(unbiased: false).sqrt().item(), 0.01, accuracy: 0.0005, "\(name) ~ N(0, 0.01)")
                XCTAssertEqual(try value.mean().item(), 0, accuracy: 0.001, "\(name) ~ N(0, 0.01)")
            }
        }
        // The same seed gives the same weights.
        let again = try DeepLabV2(.init(backbone: .resnet18, numClasses: numClasses), generator: Generator(seed: 3))
        try assertAllClose(
            again.layer6.branchConvolutions[1].bias?.value, model.layer6.branchConvolutions[1].bias?.value, relative: 0,
            "same seed")
        try assertAllClose(again.conv1.weight.value, model.conv1.weight.value, relative: 0, "same seed")
    }

    // MARK: shapes

    /// Output stride 8 at the Cityscapes evaluation size, on the cheapest backbone (the
    /// ResNet-101 run of the parity test checks the same arithmetic on its input).
    func testOutputStrideIsEight() throws {
        XCTAssertEqual(DeepLabV2.featureSize(forInput: Pair(512, 1024)), Pair(65, 129))
        XCTAssertEqual(DeepLabV2.featureSize(forInput: Pair(129, 257)), Pair(17, 33))
        XCTAssertEqual(DeepLabV2.featureSize(forInput: Pair(65, 97)), Pair(9, 13))
        let model = try DeepLabV2(.init(backbone: .resnet18, numClasses: numClasses), generator: Generator(seed: 1))
        model.eval()
        try withNoGrad {
            let (x3, x4) = try model.features(Tensor.zeros([1, 3, 512, 1024]))
            XCTAssertEqual(x3.shape, [1, 256, 65, 129])
            XCTAssertEqual(x4.shape, [1, 512, 65, 129])
        }
    }

    /// Channels last on CPU (the default where the Winograd kernels run) keeps the activations
    /// NHWC through the backbone and gives NCHW's logits and weight gradients to float rounding;
    /// turned off, the features stay NCHW.
    func testChannelsLastKeepsTheValuesAndTheLayout() throws {
        let model = try DeepLabV2(.init(backbone: .resnet50, numClasses: numClasses), generator: Generator(seed: 4))
        XCTAssertEqual(model.channelsLastOnCPU, Kernels.winogradAvailable)
        // Evaluation mode: batch statistics of fresh weights would magnify the rounding.
        model.eval()
        let input = try Tensor.normal([2, 3, 65, 97], generator: Generator(seed: 5))
        let weight = try XCTUnwrap(model.namedParameters().first { $0.name == "layer3.0.conv2.weight" }).parameter.value
        var results: [(logits: Tensor, gradient: Tensor)] = []
        for channelsLast in [false, true] {
            model.channelsLastOnCPU = channelsLast
            XCTAssertEqual(
                try withNoGrad { try model.features(input).layer4.isContiguous(.channelsLast) }, channelsLast,
                "layer4's features channels last: \(channelsLast)")
            if weight.grad != nil { try weight.zeroGrad() }
            let logits = try model.logits(input)
            try (logits * logits).mean().backward()
            results.append((try logits.detach(), try XCTUnwrap(weight.grad).clone()))
        }
        let pairs = [
            ("logits", results[0].logits, results[1].logits),
            ("a layer3 weight's gradient", results[0].gradient, results[1].gradient),
        ]
        for (name, nchw, channelsLast) in pairs { try assertAllClose(channelsLast, nchw, relative: 1e-4, name) }
    }

    func testRejectsAnInputThatIsNotAnImageBatch() throws {
        let model = try DeepLabV2(.init(backbone: .resnet18, numClasses: numClasses), generator: Generator(seed: 1))
        XCTAssertThrowsError(try model.logits(Tensor.zeros([1, 4, 16, 16]))) { error in
            XCTAssertTrue("\(error)".contains("[N, 3, H, W]"), "\(error)")
        }
    }

    // MARK: the classifier as one matrix product

    /// The head's output and its gradients for the features, weights and biases equal those
    /// of libtorch's dilated convolutions summed, for both branch sets, on maps where every
    /// tap falls inside (30x27 > 24), where the dilation-12 taps fall outside in one
    /// direction only (9x13), and where a tap lands exactly on the border (5x6: |6| = w).
    func testClassifierMatchesTheSummedDilatedConvolutionsWithGradients() throws {
        let generator = try Generator(seed: 7)
        for branches in [DeepLabV2.ClassifierBranches.published, .fourBranch] {
            let head = try DeepLabV2Classifier(inChannels: 6, numClasses: 4, branches: branches)
            let used = branches == .published ? Array(head.branchConvolutions.prefix(2)) : head.branchConvolutions
            for conv in head.branchConvolutions {
                try withNoGrad {
                    try conv.weight.value.copy_(Tensor.normal(conv.weight.value.shape, generator: generator))
                    try conv.bias?.value.copy_(Tensor.normal([4], generator: generator))
                }
            }
            for (h, w) in [(30, 27), (9, 13), (5, 6)] {
                let label = "\(branches) on \(h)x\(w)"
                let x = try Tensor.normal([2, 6, h, w], generator: generator).requiresGrad(true)
                let upstream = try Tensor.normal([2, 4, h, w], generator: generator)
                /// Output and gradients [x, each used weight, each used bias] of `forward`.
                func outputAndGradients(_ forward: () throws -> Tensor) throws -> [Tensor] {
                    try x.zeroGrad()
                    for conv in head.branchConvolutions {
                        try conv.weight.value.zeroGrad()
                        try conv.bias?.value.zeroGrad()
                    }
                    let out = try forward()
                    try out.backward(upstream)
                    let leaves = [x] + used.map(\.weight.value) + used.compactMap(\.bias?.value)
                    return try [out.detach()]
                        + leaves.map { try XCTUnwrap($0.grad, "\(label): a gradient is missing") }
                }
                let ours = try outputAndGradients { try head(x) }
                let reference = try outputAndGradients {
                    var sum = try used[0](x)
                    for conv in used.dropFirst() { sum = try sum + conv(x) }
                    return sum
                }
                let names =
                    ["output", "input gradient"] + used.indices.map { "weight \($0) gradient" }
                    + used.indices.map { "bias \($0) gradient" }
                XCTAssertEqual(ours.count, names.count, label)
                for (name, (a, b)) in zip(names, zip(ours, reference)) {
                    try assertAllClose(a, b, relative: 1e-5, "\(label): \(name)")
                }
            }
        }
    }

    func testClassifierNamesFeaturesOfTheWrongShape() throws {
        let head = try DeepLabV2Classifier(inChannels: 6, numClasses: 4)
        for shape in [[2, 5, 9, 9], [6, 9, 9]] {
            XCTAssertThrowsError(try head(Tensor.zeros(shape)), "\(shape)") { error in
                XCTAssertEqual(
                    (error as? TorchError)?.message,
                    "DeepLabV2Classifier expects features [N, 6, h, w], got \(shape)")
            }
        }
    }

    // MARK: model card, heads, freezing

    func testCardHeadsAndFrozenBatchNorm() throws {
        let model = try DeepLabV2(.init(backbone: .resnet18, numClasses: 19), generator: Generator(seed: 2))
        let card = model.card
        XCTAssertEqual(card.numOutputs, 19)
        XCTAssertEqual(card.classNames.first, "road")
        XCTAssertEqual(card.classNames.last, "bicycle")
        XCTAssertEqual(card.normalization.channelOrder, .bgr)
        XCTAssertEqual(card.normalization.mean, [104.00698793, 116.66876762, 122.67891434])
        XCTAssertEqual(card.normalization.std, [1, 1, 1])
        XCTAssertEqual(card.normalization.scale, 1)
        XCTAssertEqual(DeepLabV2.classNames(count: 16).count, 16)
        XCTAssertFalse(DeepLabV2.classNames(count: 16).contains("terrain"))
        XCTAssertEqual(DeepLabV2.classNames(count: 13).count, 13)
        XCTAssertFalse(DeepLabV2.classNames(count: 13).contains("wall"))
        XCTAssertEqual(DeepLabV2.classNames(count: 5), ["class 0", "class 1", "class 2", "class 3", "class 4"])

        XCTAssertEqual(model.headModuleNames, ["layer5", "layer6"])
        XCTAssertEqual(model.parameters(for: .head).count, 16, "4 convs with bias in each of 2 heads")

        // MaxSquare / OCL: only the stem BatchNorm is frozen.
        let frozen = model.namedParameters().filter { !$0.parameter.isTrainable }.map(\.name)
        XCTAssertEqual(frozen, ["bn1.weight", "bn1.bias"])
        XCTAssertEqual(
            model.parameters(for: .batchNormAffine).count, 2 * (model.batchNormLayers.count - 1),
            "every BatchNorm but the stem's stays trainable")
        // AdaptSegNet: every BatchNorm frozen, convolutions trainable.
        let adaptSegNet = try DeepLabV2(
            .init(backbone: .resnet18, numClasses: 19, frozenBatchNorm: .all), generator: Generator(seed: 2))
        XCTAssertTrue(adaptSegNet.parameters(for: .batchNormAffine).isEmpty)
        XCTAssertEqual(
            adaptSegNet.trainableParameters().count,
            adaptSegNet.namedParameters().filter { !$0.name.contains("bn") && !$0.name.contains("downsample.1") }.count)
    }

    func testLogitsAreTheMainHeadUpsampled() throws {
        let (fixture, _) = try loadDeepLabFixture()
        let model = try makeFixtureModel(.resnet18)
        try withNoGrad {
            let input = try XCTUnwrap(fixture["input.b"])
            try assertAllClose(model.logits(input), model(input).main, relative: 0, "logits = main")
        }
    }

    // MARK: checkpoints

    private var prefixedCheckpoint: URL {
        get throws {
            guard
                let url = Bundle.module.url(
                    forResource: "deeplab_module_prefixed", withExtension: "pth", subdirectory: "Fixtures")
            else {
                throw XCTSkip(
                    "deeplab_module_prefixed.pth is missing: run /usr/bin/python3 Scripts/fixtures/deeplab.py")
            }
            return url
        }
    }

    /// A MaxSquare-style training checkpoint ({epoch, state_dict, optimizer, ...}, DataParallel
    /// names, no num_batches_tracked) gives a ResNet-101 with 19 classes holding its values.
    func testLoadsAModulePrefixedTrainingCheckpoint() throws {
        let model = try DeepLabV2.load(try prefixedCheckpoint)
        XCTAssertEqual(model.configuration.backbone, .resnet101)
        XCTAssertEqual(model.configuration.numClasses, 19)
        XCTAssertEqual(model.card.classNames.count, 19)
        XCTAssertFalse(model.isTraining, "a loaded model is in evaluation mode")
        XCTAssertFalse(model.bn1.weight?.isTrainable ?? true, "the stem BatchNorm stays frozen after loading")
        // Tensor number i of the file (state-dict order) holds (i + 1) / 1024 everywhere.
        let names = model.stateDict().names.filter { !$0.hasSuffix("num_batches_tracked") }
        XCTAssertEqual(names.count, 536, "tensors in the file")
        let state = model.stateDict()
        for (index, name) in names.enumerated() {
            let tensor = try XCTUnwrap(state[name])
            let expected = Double(index + 1) / 1024
            XCTAssertEqual(try tensor.amin().item(), expected, accuracy: 1e-9, name)
            XCTAssertEqual(try tensor.amax().item(), expected, accuracy: 1e-9, name)
        }
    }

    func testACheckpointWithOtherClassesOrBlocksFailsNamingTheTensors() throws {
        let url = try prefixedCheckpoint
        // 19 classes in the file, 16 asked for: every head tensor's shape differs.
        XCTAssertThrowsError(try DeepLabV2.load(url, backbone: .resnet101, numClasses: 16)) { error in
            guard let error = error as? DeepLabV2.LoadError, let mismatch = error.mismatch else {
                return XCTFail("expected a LoadError with a mismatch, got \(error)")
            }
            XCTAssertEqual(mismatch.shapeMismatches.count, 16)
            XCTAssertTrue(mismatch.missing.isEmpty && mismatch.unexpected.isEmpty)
            let text = "\(error)"
            XCTAssertTrue(text.contains(url.path), text)
            XCTAssertTrue(
                text.contains(
                    "layer5.conv2d_list.0.weight: model expects [16, 1024, 3, 3], checkpoint has [19, 1024, 3, 3]"),
                text)
            XCTAssertTrue(text.contains("layer6.conv2d_list.3.bias: model expects [16], checkpoint has [19]"), text)
        }

        // ResNet-50 blocks (layer3 with 6 blocks) into a ResNet-101.
        let resnet50 = StateDict(
            try Checkpoint.load(url).filter { entry in
                guard entry.name.hasPrefix("module.layer3."), let index = Int(entry.name.split(separator: ".")[2])
                else { return true }
                return index < 6
            })
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            "deeplab-resnet50-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: file) }
        try SafeTensors.write(resnet50, to: file)
        XCTAssertThrowsError(try DeepLabV2.load(file, backbone: .resnet101)) { error in
            guard let error = error as? DeepLabV2.LoadError, let mismatch = error.mismatch else {
                return XCTFail("expected a LoadError with a mismatch, got \(error)")
            }
            XCTAssertEqual(
                mismatch.missing.count, 17 * (3 + 3 * 4), "layer3.6 ... layer3.22: 3 convs, 3 BatchNorms of 4 tensors")
            XCTAssertTrue(mismatch.missing.contains("layer3.22.bn3.running_var"))
            XCTAssertTrue("\(error)".contains(file.path))
            XCTAssertTrue("\(error)".contains("resnet101"))
        }
        // Without a backbone named, the blocks say ResNet-50.
        XCTAssertEqual(try DeepLabV2.load(file).configuration.backbone, .resnet50)
    }

    func testAStateDictOfAnotherNetworkIsRefusedWithItsNames() throws {
        let other = StateDict([("encoder.level1.conv.weight", try Tensor.zeros([16, 3, 3, 3]))])
        XCTAssertThrowsError(try DeepLabV2.load(other, source: "espnet.pth")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("espnet.pth: is not a DeepLabV2"), text)
            XCTAssertTrue(text.contains("layer6.conv2d_list.0.weight"), text)
            XCTAssertTrue(text.contains("encoder.level1.conv.weight"), text)
        }
    }

    /// A Swift model saved with DataParallel names loads back (backbone and classes inferred)
    /// and gives the same outputs.
    func testSavedWithModulePrefixLoadsBackToTheSameOutputs() throws {
        let (fixture, _) = try loadDeepLabFixture()
        let model = try makeFixtureModel(.resnet18)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("deeplab-r18-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: file) }
        try SafeTensors.write(model.stateDict().addingPrefix("module."), to: file)
        let loaded = try DeepLabV2.load(file)
        XCTAssertEqual(loaded.configuration, model.configuration)
        try withNoGrad {
            let input = try XCTUnwrap(fixture["input.b"])
            let (a, b) = (try model(input), try loaded(input))
            try assertAllClose(b.main, a.main, relative: 0, "main")
            try assertAllClose(b.auxiliary, a.auxiliary, relative: 0, "auxiliary")
        }
    }

    // MARK: helpers

    private func loadDeepLabFixture() throws -> (tensors: StateDict, metadata: [String: String]) {
        guard
            let url = Bundle.module.url(forResource: "deeplab", withExtension: "safetensors", subdirectory: "Fixtures")
        else { throw XCTSkip("deeplab.safetensors is missing: run /usr/bin/python3 Scripts/fixtures/deeplab.py") }
        return try SafeTensors.read(url)
    }

    /// Asserts equal shapes and max |a - b| <= relative * max |b| (0: bit-equal values).
    private func assertAllClose(
        _ actual: Tensor?, _ expected: Tensor?, relative: Double, _ label: String,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        guard let actual, let expected else { return XCTFail("\(label): missing tensor", file: file, line: line) }
        XCTAssertEqual(actual.shape, expected.shape, "\(label): shape", file: file, line: line)
        guard actual.shape == expected.shape else { return }
        let scale = try expected.abs().amax().item()
        let error = try (actual.to(.float64) - expected.to(.float64)).abs().amax().item()
        XCTAssertLessThanOrEqual(
            error, relative * scale, "\(label): max |difference| \(error) for max |value| \(scale)", file: file,
            line: line)
    }
}
