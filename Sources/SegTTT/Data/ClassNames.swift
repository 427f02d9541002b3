/// Class names of the label protocols the released checkpoints use.
public enum ClassNames {
    /// The 19 Cityscapes evaluation classes, index = trainId (cityscapesScripts `labels.py`).
    public static let cityscapes = [
        "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
        "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
    ]

    /// The 11 CamVid classes of the SegNet split (label 11 is void).
    public static let camVid = [
        "Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
    ]
}
