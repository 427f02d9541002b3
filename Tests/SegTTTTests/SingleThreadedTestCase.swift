import TestSupport
import Torch
import XCTest

/// A test case whose tests run libtorch on one thread and restore the count afterwards.
/// For tests on tiny tensors: threads gain nothing there, while on a loaded machine
/// OpenMP's thread hand-offs make every op 10 to 40 times slower (measured: 0.5 s
/// single-threaded, up to 19 s with two threads).
class SingleThreadedTestCase: ConfiguredTestCase {
    private var savedThreads = 1

    override func setUp() {
        super.setUp()
        savedThreads = Runtime.numThreads
        Runtime.numThreads = 1
    }

    override func tearDown() {
        Runtime.numThreads = savedThreads
        super.tearDown()
    }
}
