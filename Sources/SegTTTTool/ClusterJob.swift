import ArgumentParser
import Foundation

/// A plan's runs as one job of a cluster scheduler, one task per run, each task calling
/// `segttt sweep PLAN --run I` with the index the scheduler gives it.
struct ClusterJob {
    enum Kind: String, ExpressibleByArgument, CaseIterable {
        case slurm, kubernetes
    }

    let plan: SweepPlan
    /// The plan's path as the tasks read it (relative to `workingFolder`, or absolute).
    let planPath: String
    let executable: URL
    let threads: Int
    let workingFolder: String

    /// A job name from the plan's file name: lowercase letters, digits and '-'.
    var name: String {
        let stem = plan.file.deletingPathExtension().lastPathComponent.lowercased()
        let cleaned = String(stem.map { $0.isLetter && $0.isASCII || $0.isNumber ? $0 : "-" })
        return "segttt-sweep-" + String(cleaned.trimmingCharacters(in: CharacterSet(charactersIn: "-")).prefix(40))
    }

    /// A Slurm batch script for `sbatch`: a job array of one task per run
    /// (`SLURM_ARRAY_TASK_ID` picks the run), requeued when preempted or its node fails, with
    /// SIGTERM 120 s before the time limit so that the run saves its state, one GPU per task
    /// when the plan runs on `cuda`, and the tasks' output appended to OUTPUT/logs.
    func slurmScript() -> String {
        var lines = [
            "#!/bin/bash",
            "# Written by `segttt sweep \(planPath) --emit slurm`: \(plan.runs.count) runs, one array task each.",
            "# Submit with: sbatch THIS_FILE   (add --partition, --time and the like to taste)",
            "#SBATCH --job-name=\(name)",
            "#SBATCH --array=0-\(plan.runs.count - 1)",
            "#SBATCH --ntasks=1",
            "#SBATCH --cpus-per-task=\(threads)",
            "#SBATCH --requeue",
            "#SBATCH --signal=B:TERM@120",
            "#SBATCH --open-mode=append",
            "#SBATCH --chdir=\(workingFolder)",
            "#SBATCH --output=\(plan.output.path)/logs/slurm-%A_%a.out",
        ]
        if plan.usesCUDA { lines.append("#SBATCH --gres=gpu:1") }
        lines += [
            "set -euo pipefail",
            "# A preempted or requeued task starts again here and resumes its run from the saved state.",
            "exec \(Self.quoted(executable.path)) sweep \(Self.quoted(planPath)) --run \"$SLURM_ARRAY_TASK_ID\" --threads \(threads)",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// A Kubernetes Indexed Job for `kubectl apply -f`: `completions` one per run, the pod's
    /// `JOB_COMPLETION_INDEX` picks the run, `parallelism` runs at a time, the volume claim
    /// mounted at `mountPath` as the working folder (plan, data and output root on it), a
    /// failed container restarted in place (its run resumes), one GPU per pod on `cuda`.
    func kubernetesManifest(image: String, volumeClaim: String, mountPath: String, parallelism: Int) -> String {
        let command = "exec segttt sweep \(Self.quoted(planPath)) --run \"$JOB_COMPLETION_INDEX\" --threads \(threads)"
        var resources = [
            "          resources:",
            "            requests:",
            "              cpu: \"\(threads)\"",
        ]
        if plan.usesCUDA {
            resources += ["            limits:", "              nvidia.com/gpu: 1"]
        }
        let lines =
            [
                "# Written by `segttt sweep \(planPath) --emit kubernetes`: \(plan.runs.count) runs, one index each.",
                "# Apply with: kubectl apply -f THIS_FILE",
                "apiVersion: batch/v1",
                "kind: Job",
                "metadata:",
                "  name: \(name)",
                "spec:",
                "  completionMode: Indexed",
                "  completions: \(plan.runs.count)",
                "  parallelism: \(min(parallelism, plan.runs.count))",
                "  backoffLimit: \(3 * plan.runs.count)",
                "  template:",
                "    spec:",
                "      restartPolicy: OnFailure",
                "      containers:",
                "        - name: segttt",
                "          image: \(Self.yamlString(image))",
                "          workingDir: \(Self.yamlString(mountPath))",
                "          command: [\"/bin/sh\", \"-c\", \(Self.yamlString(command))]",
            ] + resources + [
                "          volumeMounts:",
                "            - name: data",
                "              mountPath: \(Self.yamlString(mountPath))",
                "      volumes:",
                "        - name: data",
                "          persistentVolumeClaim:",
                "            claimName: \(Self.yamlString(volumeClaim))",
            ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// `text` for a POSIX shell: as it is when it needs no quoting, otherwise in single quotes.
    static func quoted(_ text: String) -> String {
        if !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "/._-+=:,".contains($0)) }) {
            return text
        }
        return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// `text` as a double-quoted YAML scalar.
    static func yamlString(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
