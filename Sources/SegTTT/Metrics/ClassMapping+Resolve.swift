import Foundation
import TorchNN

/// Why a model's classes cannot be evaluated against a dataset's.
public struct ClassMappingError: Error, CustomStringConvertible, Equatable {
    public let message: String

    public var description: String { message }
}

extension ClassMapping {
    /// The mapping from a model's outputs to a dataset's classes, decided in this order:
    /// 1. a class-map file, when given: JSON `{"model class": "dataset class" or null, ...}`,
    ///    every model class listed (null = unmapped);
    /// 2. the known pair Cityscapes (19 classes) -> CamVid (11 classes) of shared/MODELS.md;
    /// 3. matching names: every dataset class is a model class of the same name (the 16- and
    ///    13-class SYNTHIA and NTHU protocols are subsets of Cityscapes' names); model classes
    ///    the dataset lacks are unmapped.
    /// Outputs beyond the model's named classes (a background or void output) are unmapped.
    /// Anything else is an error that says how to write a class-map file: a silent 0 mIoU
    /// from mismatched classes is never the answer.
    public static func resolve(
        modelClasses: [String], numOutputs: Int, datasetClasses: [String], classMapFile: URL? = nil
    ) throws -> ClassMapping {
        let extra = [Int?](repeating: nil, count: Swift.max(0, numOutputs - modelClasses.count))
        let datasetIndex = Dictionary(datasetClasses.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        if let classMapFile {
            return try fromFile(classMapFile, modelClasses: modelClasses, datasetIndex: datasetIndex, extra: extra)
        }
        if modelClasses == ClassNames.cityscapes && datasetClasses == ClassNames.camVid {
            return ClassMapping(
                target: Array(cityscapesToCamVid.target.prefix(19)) + extra, numTargetClasses: datasetClasses.count)
        }
        let modelNames = Set(modelClasses)
        guard datasetClasses.allSatisfy(modelNames.contains) else {
            let missing = datasetClasses.filter { !modelNames.contains($0) }
            throw ClassMappingError(
                message: "the model's classes (\(modelClasses.joined(separator: ", "))) do not cover the dataset's "
                    + "classes \(missing.joined(separator: ", ")) and no known mapping applies; write a class-map "
                    + "JSON file {\"model class\": \"dataset class\" or null, ...} and pass it as --class-map")
        }
        return ClassMapping(
            target: modelClasses.map { datasetIndex[$0] } + extra, numTargetClasses: datasetClasses.count)
    }

    private static func fromFile(
        _ url: URL, modelClasses: [String], datasetIndex: [String: Int], extra: [Int?]
    ) throws -> ClassMapping {
        if let problem = FileFailure.notAFile(url) {
            throw ClassMappingError(message: "\(url.path): the class-map file \(problem); check --class-map")
        }
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ClassMappingError(message: "\(url.path): the class-map file cannot be read; check the path")
        }
        guard let json = try? JSONSerialization.jsonObject(with: data), let map = json as? [String: Any] else {
            throw ClassMappingError(
                message: "\(url.path): not a JSON object; expected {\"model class\": \"dataset class\" or null, ...}")
        }
        var target: [Int?] = []
        for name in modelClasses {
            guard let entry = map[name] else {
                throw ClassMappingError(
                    message: "\(url.path): model class '\(name)' is not listed; map it to a dataset class or to null")
            }
            if entry is NSNull {
                target.append(nil)
            } else if let datasetClass = entry as? String, let index = datasetIndex[datasetClass] {
                target.append(index)
            } else {
                throw ClassMappingError(
                    message: "\(url.path): '\(name)' maps to \(entry), which is not a dataset class ("
                        + datasetIndex.sorted { $0.value < $1.value }.map(\.key).joined(separator: ", ") + ")")
            }
        }
        return ClassMapping(target: target + extra, numTargetClasses: datasetIndex.count)
    }
}
