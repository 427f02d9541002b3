import Torch
import XCTest

/// A test case that computes under the process settings SegTTT's tool applies
/// (`Runtime.configure`: libtorch's threads on every core, OpenBLAS at one thread, glibc
/// keeping freed memory), but in IEEE arithmetic (denormals kept), as PyTorch computed the
/// fixtures. A process computes under libtorch's defaults until something configures it.
open class ConfiguredTestCase: XCTestCase {
    override open class func setUp() {
        super.setUp()
        Runtime.configure(Runtime.Settings(flushDenormals: false))
    }
}
