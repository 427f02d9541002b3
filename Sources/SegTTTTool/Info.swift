import ArgumentParser
import Foundation
import SegTTT
import SegTTTReports
import TorchNN

/// `segttt info`: what a checkpoint holds and which model it fits.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what a checkpoint holds: format, tensors, and which model it fits.")

    @Argument(help: "A PyTorch .pth (zip or legacy), safetensors or TorchScript (.pt) file.")
    var checkpoint: String

    @Flag(help: "List every tensor with its shape and type.")
    var tensors = false

    func run() throws {
        let url = URL(fileURLWithPath: checkpoint)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw ToolError("\(checkpoint): no such file; give the path of a .pth, .safetensors or .pt file")
        }
        if Checkpoint.isTorchScript(url) {
            print(try TorchScriptInfo(url).report(listingTensors: tensors))
            return
        }
        let format = try Checkpoint.format(of: url)
        let state = try Checkpoint.load(url)
        let elements = state.reduce(0) { $0 + $1.tensor.count }
        let dtypes = Set(state.map { "\($0.tensor.dtype)" }).sorted().joined(separator: ", ")
        print("\(checkpoint)")
        print("  format:   \(format)")
        print("  tensors:  \(state.count) (\(elements) numbers; \(dtypes))")
        let prefixes = Dictionary(grouping: state.names) { $0.split(separator: ".").first.map(String.init) ?? $0 }
        print("  groups:   " + prefixes.keys.sorted().map { "\($0) (\(prefixes[$0]!.count))" }.joined(separator: ", "))
        if format == .safetensors, let card = try ModelFile.card(in: url) {
            print("  card:     \(card.name); classes \(card.classNames.joined(separator: ", "))")
        }
        if tensors {
            let rows = state.map { [$0.name, "\($0.tensor.shape)", "\($0.tensor.dtype)"] }
            print(TextTable(header: ["tensor", "shape", "type"], rows: rows).terminal())
        }
        var fits: [String] = []
        var reasons: [String] = []
        for family in ModelFamilies.all where !(family is TorchScriptFamily) {
            do {
                let model = try ModelFile.load(url, family: family)
                fits.append(
                    "\(family.name): \(model.card.name), \(model.card.numOutputs) outputs, "
                        + "\(model.trainableParameters().reduce(0) { $0 + $1.value.count }) parameters")
            } catch {
                reasons.append("\(family.name): \(error)")
            }
        }
        guard !fits.isEmpty else {
            throw ToolError(
                "\(checkpoint) fits no model SegTTT builds (" + reasons.joined(separator: "; ") + ")")
        }
        print("  fits:     " + fits.joined(separator: "\n            "))
    }
}
