// Package config reads the YAML configuration of `chronicler run` and turns
// it into the capture options.
//
// [Load] reads one file, rejects unknown keys, and reports every invalid
// setting at once (errors.Join of *Error, each with file:line:col and the
// setting's path, e.g. "chronicler.yaml:7:5: store.url: required"). Relative
// rule paths are resolved against the config file's directory. Environment
// overrides (CHRONICLER_...) are not implemented yet.
//
// The format, with defaults, is in deploy/examples/chronicler.yaml.
//
// Concurrency: Load is a pure function of the file; a *Config is a value.
//
// Example:
//
//	cfg, err := config.Load("chronicler.yaml")
//	if err != nil {
//		return err // every problem, one per line
//	}
//	return capture.Run(ctx, cfg.CaptureOptions(logger, registry))
package config
