/// Colours for drawing class maps, one RGB triple per class.
///
/// Classes with a conventional colour get it: the 19 Cityscapes evaluation classes as in
/// cityscapesScripts, the 11 CamVid classes of the SegNet split as in its colour labels, and
/// the SyntheticStreets classes, which share names with Cityscapes classes and take their
/// colours. Any other name gets a colour of its own from a fixed hue sequence. Black is never
/// a class colour: it marks pixels without one (ignored, or not mapped to any class).
public enum ClassPalette {
    /// The colour of pixels without a class.
    public static let unlabelled: [UInt8] = [0, 0, 0]

    /// Cityscapes colours by trainId class name (cityscapesScripts `labels.py`).
    static let cityscapes: [String: [UInt8]] = [
        "road": [128, 64, 128], "sidewalk": [244, 35, 232], "building": [70, 70, 70], "wall": [102, 102, 156],
        "fence": [190, 153, 153], "pole": [153, 153, 153], "traffic light": [250, 170, 30],
        "traffic sign": [220, 220, 0], "vegetation": [107, 142, 35], "terrain": [152, 251, 152],
        "sky": [70, 130, 180], "person": [220, 20, 60], "rider": [255, 0, 0], "car": [0, 0, 142],
        "truck": [0, 0, 70], "bus": [0, 60, 100], "train": [0, 80, 100], "motorcycle": [0, 0, 230],
        "bicycle": [119, 11, 32],
    ]

    /// CamVid colours by class name, spelled as in `ClassNames.camVid`.
    static let camVid: [String: [UInt8]] = [
        "Sky": [128, 128, 128], "Building": [128, 0, 0], "Pole": [192, 192, 128], "Road": [128, 64, 128],
        "Pavement": [60, 40, 222], "Tree": [128, 128, 0], "SignSymbol": [192, 128, 128], "Fence": [64, 64, 128],
        "Car": [64, 0, 128], "Pedestrian": [64, 64, 0], "Bicyclist": [0, 128, 192],
    ]

    /// One RGB colour per class, in the order of `classNames`.
    ///
    /// A name spelled exactly as a Cityscapes or CamVid class gets that protocol's colour (the
    /// two spell their names differently: "sky" is Cityscapes', "Sky" CamVid's); otherwise a
    /// name equal to a Cityscapes class, then to a CamVid class, ignoring case, gets that
    /// class's colour. The other names take the colours of `generatedColour(_:)` in turn, so
    /// the colours depend only on `classNames`, and the generated ones differ from each other
    /// and from every conventional colour (for up to `generatedCount` such names).
    public static func colours(for classNames: [String]) -> [[UInt8]] {
        var generated = 0
        return classNames.map { name in
            if let known = conventionalColour(of: name) { return known }
            defer { generated += 1 }
            return generatedColour(generated)
        }
    }

    /// The conventional colour of a Cityscapes, CamVid or SyntheticStreets class name, matched
    /// as `colours(for:)` describes; nil for other names.
    public static func conventionalColour(of name: String) -> [UInt8]? {
        if let colour = cityscapes[name] ?? camVid[name] { return colour }
        let folded = name.lowercased()
        if let colour = cityscapes[folded] { return colour }
        return camVid.first { $0.key.lowercased() == folded }?.value
    }

    /// How many colours of `generatedColour(_:)`, from the first, are distinct from each other
    /// and from every conventional colour.
    public static let generatedCount = 2000

    /// The `index`-th colour of a sequence for classes without a conventional colour: hues
    /// advance by the golden ratio of a turn, so consecutive colours lie far apart on the
    /// colour wheel, while saturation and brightness cycle through three levels each, which
    /// keeps every colour clearly brighter than black.
    public static func generatedColour(_ index: Int) -> [UInt8] {
        let goldenTurn = 0.618_033_988_749_895
        let step = Double(index)
        let hue = (0.13 + step * goldenTurn).truncatingRemainder(dividingBy: 1)
        let saturation = [0.75, 0.55, 0.95][index % 3]
        let value = [0.95, 0.75, 0.85][(index / 3) % 3]
        return rgb(hue: hue, saturation: saturation, value: value)
    }

    /// An HSV colour (each component in 0...1) as 8-bit RGB.
    static func rgb(hue: Double, saturation: Double, value: Double) -> [UInt8] {
        let sector = hue * 6
        let chroma = value * saturation
        let second = chroma * (1 - Swift.abs(sector.truncatingRemainder(dividingBy: 2) - 1))
        let (r, g, b): (Double, Double, Double)
        switch Int(sector) % 6 {
        case 0: (r, g, b) = (chroma, second, 0)
        case 1: (r, g, b) = (second, chroma, 0)
        case 2: (r, g, b) = (0, chroma, second)
        case 3: (r, g, b) = (0, second, chroma)
        case 4: (r, g, b) = (second, 0, chroma)
        default: (r, g, b) = (chroma, 0, second)
        }
        let base = value - chroma
        return [r, g, b].map { UInt8((($0 + base) * 255).rounded()) }
    }
}
