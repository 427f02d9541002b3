import ArgumentParser
import Foundation
import SegTTT

/// `segttt adapt`: one method along one stream, with a progress bar, a per-class table at the
/// end, and every result file in --output (see `AdaptationJob`).
struct Adapt: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Adapt a network along a stream with one method and report its accuracy.",
        discussion: """
            Example:
              segttt adapt --model espnet --checkpoint espnet_p_2_q_8.pth \\
                --dataset camvid:../shared/data/camvid --method ocl --output out/ocl

            Options not given take the method's settings from --preset: recommended (the \
            default: the published settings, and for OCL gradient clipping at 10 and a reset \
            to the source when its predictions drift; docs/STABILITY.md) or published (the \
            paper's settings, for reproducing it). The configuration used is \
            written to OUTPUT/config.json, which --config accepts back (JSON or YAML, keys are \
            the long option names, e.g. lr: 2.0e-5). A run stopped at any point continues with \
            the same command and --resume.

            """ + "\n" + RunArguments.help)

    @OptionGroup var options: RunArguments

    @Option(help: "Folder for the results.")
    var output: String = "out/adapt"

    @Flag(help: "Continue the run saved in --output.")
    var resume = false

    func run() throws {
        let configuration = try options.configuration()
        let job = try AdaptationJob(configuration: configuration, output: URL(fileURLWithPath: output))
        try Interrupted.exitingOnSignal { try job.run(resume: resume) }
        print("results in \(output)/ (metrics.json, frames.csv, running-miou.svg\(job.plan.settings.predictions ? ", predictions/" : ""))")
    }
}
