// Package config reads the configuration of `chronicler run`, `check` and
// `status`: one YAML file plus environment overrides plus secret files, and
// turns it into the capture and publish options and the store client's
// configuration ([Config.StoreClient]).
//
// [Load] starts from [Defaults], decodes the file over them (unknown keys are
// errors), applies every set CHRONICLER_<PATH> variable (see [Keys] and
// [EnvName]: the path upper-cased, '.' → '_'; lists comma-separated), reads
// secret files (*_file settings), and validates. Every invalid setting is
// reported at once (errors.Join of *Error), each at its file:line:col or at
// the environment variable that set it, with the setting's path, e.g.
// "chronicler.yaml:7:5: store.url: required". Validation asks only for what
// the running parts need ([Parts]): kafka.brokers only when publishing.
// Relative paths are resolved against the config file's directory.
//
// Secrets (fields tagged secret:"true": passwords and tokens) are never
// printed: errors quote neither them nor URLs holding them, and
// [Config.Redacted] is the copy to print.
//
// The format, with every key and its default, is in
// deploy/examples/chronicler.yaml; TestReferenceDocumentsEveryKey and
// TestEveryKeyHasEnvOverride keep that file and the environment overrides in
// step with this package.
//
// Concurrency: Load is a pure function of the file and the environment; a
// *Config is a value.
//
// Example:
//
//	cfg, err := config.Load("chronicler.yaml", config.All)
//	if err != nil {
//		return err // every problem, one per line
//	}
//	return capture.Run(ctx, cfg.CaptureOptions(logger, registry))
package config
