// The segttt command-line tool; its commands live in the SegTTTTool library.
import SegTTTTool

SegTTTCommand.start()
