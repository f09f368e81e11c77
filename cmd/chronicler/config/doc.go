// Package config reads the configuration of `chronicler run`, `check` and
// `status`: one YAML file plus environment overrides plus secret files, and
// turns it into the capture and publish options and the store client's
// configuration ([Config.StoreClient]).
//
// [Load] starts from [Defaults], decodes the file over them, applies every
// set CHRONICLER_<PATH> variable (see [Keys] and [EnvName]: the path
// upper-cased, '.' → '_'; lists comma-separated), reads secret files
// (*_file settings), and validates. Decoding walks the YAML syntax tree
// itself (decode.go) rather than unmarshalling, so that decoding problems
// and validation problems come out together, all at once, in one form: an
// *Error at its file:line:col or at the environment variable that set it,
// with the setting's path ("chronicler.yaml:7:5: store.url: required"). An
// unknown key names the closest known one ("did you mean status_interval?",
// by edit distance), a value of the wrong type is quoted with the type
// wanted, and no Go type appears. A CHRONICLER_* variable that names no
// setting is an error naming the closest variable (the test stack's
// CHRONICLER_TEST_*, CHRONICLER_E2E_*, CHRONICLER_BENCH_*,
// CHRONICLER_CACHE_DIR excepted); Load reads
// the process environment as an [Environ], which can be listed. Only a YAML
// syntax error stops early: nothing after it can be placed. Validation asks
// only for what the running parts need ([Parts]): kafka.brokers only when
// publishing. postgres.slot and postgres.publication have no default: absent,
// they are "required". Relative paths are resolved against the config file's
// directory.
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
// [Changed] names the settings (paths, never values) that differ between
// two configurations: a reload of `chronicler run` reads the file again and
// applies only postgres.tables and postgres.add_missing_tables, and warns
// with it about the others (they need a restart).
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
