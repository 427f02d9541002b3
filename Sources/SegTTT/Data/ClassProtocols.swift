/// The label protocols of the driving-scene benchmarks, and the raw-id tables behind them.
///
/// Every protocol here is a subset of the 19 Cityscapes evaluation classes ("trainIds"),
/// renumbered 0..<n in trainId order:
/// - `cityscapes19`: all 19 (Cityscapes, GTA5 -> Cityscapes, ACDC).
/// - `synthia16`: trainIds 0-8, 10-13, 15, 17, 18 (SYNTHIA -> Cityscapes; no terrain,
///   truck or train in SYNTHIA).
/// - `synthia13`: trainIds 0, 1, 2, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18 (the 16 less wall,
///   fence and pole; also the NTHU cross-city protocol).
public enum LabelProtocol: String, CaseIterable, Sendable {
    case cityscapes19
    case synthia16
    case synthia13

    /// The Cityscapes trainIds kept, in the order of their new indices.
    public var trainIds: [Int] {
        switch self {
        case .cityscapes19: return Array(0..<19)
        case .synthia16: return ClassProtocols.synthia16TrainIds
        case .synthia13: return ClassProtocols.synthia13TrainIds
        }
    }

    /// Class names, index = label value.
    public var classNames: [String] {
        trainIds.map { ClassNames.cityscapes[$0] }
    }

    /// Number of classes.
    public var count: Int { trainIds.count }

    /// The protocol index of a Cityscapes trainId, or nil when the protocol drops it.
    public func index(ofTrainId trainId: Int) -> Int? {
        trainIds.firstIndex(of: trainId)
    }
}

/// The published tables: Cityscapes labelIds -> trainIds, SYNTHIA class ids -> trainIds,
/// and the index lists of the SYNTHIA protocols.
public enum ClassProtocols {
    /// Cityscapes labelId -> trainId for the 19 evaluated classes (cityscapesScripts
    /// `labels.py`); every other labelId (void, unlabeled, parking, rail track, guard rail,
    /// bridge, tunnel, polegroup, caravan, trailer, license plate, ...) is ignored. GTA5,
    /// ACDC and the NTHU cross-city labels use the same labelIds.
    public static let cityscapesLabelIdToTrainId: [Int: Int] = [
        7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
        23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
    ]

    /// SYNTHIA class id -> Cityscapes trainId (SYNTHIA-RAND-CITYSCAPES README class table:
    /// 1 sky, 2 building, 3 road, 4 sidewalk, 5 fence, 6 vegetation, 7 pole, 8 car,
    /// 9 traffic sign, 10 pedestrian, 11 bicycle, 12 motorcycle, 15 traffic light,
    /// 16 terrain, 17 rider, 18 truck, 19 bus, 20 train, 21 wall), as the ADVENT / CBST /
    /// DAFormer loaders map it. Void (0), parking-slot (13), road-work (14) and lanemarking
    /// (22) are ignored (some forks map 13 and 22 to road; the common protocol does not).
    public static let synthiaIdToTrainId: [Int: Int] = [
        3: 0, 4: 1, 2: 2, 21: 3, 5: 4, 7: 5, 15: 6, 9: 7, 6: 8, 16: 9,
        1: 10, 10: 11, 17: 12, 8: 13, 18: 14, 19: 15, 20: 16, 12: 17, 11: 18,
    ]

    /// trainIds of the SYNTHIA 16-class protocol, in the order of their new indices 0..<16.
    public static let synthia16TrainIds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18]

    /// trainIds of the SYNTHIA (and NTHU cross-city) 13-class protocol, new indices 0..<13.
    public static let synthia13TrainIds = [0, 1, 2, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18]

    /// Names of the 16-class protocol, index = label value.
    public static var synthia16Names: [String] { LabelProtocol.synthia16.classNames }

    /// Names of the 13-class protocol, index = label value.
    public static var synthia13Names: [String] { LabelProtocol.synthia13.classNames }
}

extension LabelProtocol {
    /// The label map raw id -> protocol index: `rawToTrainId` (raw id -> Cityscapes
    /// trainId) followed by this protocol's renumbering; trainIds the protocol drops and
    /// raw ids without an entry become `ignoreLabel`.
    ///
    /// `LabelMap.apply` looks the whole label up at once (`index_select` on a table of
    /// max(raw id) + 2 entries, raw values above the table clamped to its last, ignored
    /// slot), so 8- and 16-bit labels need no per-pixel Swift code.
    public func labelMap(rawToTrainId: [Int: Int]) -> LabelMap {
        var mapping = [Int: Int]()
        for (raw, trainId) in rawToTrainId {
            mapping[raw] = index(ofTrainId: trainId) ?? ignoreLabel
        }
        return LabelMap(classCount: count, mapping: mapping, unlisted: ignoreLabel)
    }

    /// Cityscapes labelIds (Cityscapes, GTA5, ACDC, NTHU cross-city) -> this protocol.
    public var cityscapesLabelIdMap: LabelMap { labelMap(rawToTrainId: ClassProtocols.cityscapesLabelIdToTrainId) }

    /// SYNTHIA class ids -> this protocol.
    public var synthiaIdMap: LabelMap { labelMap(rawToTrainId: ClassProtocols.synthiaIdToTrainId) }
}
