import ArgumentParser

/// The options of a run along a stream, shared by `adapt` and `compare`: model, stream,
/// method settings, runtime, and a configuration file under them.
struct RunArguments: ParsableArguments {
    @OptionGroup(title: "Model") var model: ModelOptions
    @OptionGroup(title: "Stream") var stream: StreamOptions
    @OptionGroup(title: "Method options (default: the recommended preset)") var method: MethodOptions
    @OptionGroup(title: "Runtime and outputs") var runtime: RuntimeOptions

    @Option(help: "A JSON or YAML file of options (the flags given here override it).")
    var config: String?

    /// The configuration file's fields overridden by the flags; `method` names the method.
    func configuration(method kind: String?) throws -> RunConfiguration {
        var flags = RunConfiguration(model: model, stream: stream, method: method, runtime: runtime)
        flags.method = kind
        return try RunConfiguration.combining(file: config, flags: flags)
    }
}
