package publish

// ErrSimulatedCrash and SetBeforeEnd let external tests simulate a crash
// inside a Kafka transaction.
var ErrSimulatedCrash = errSimulatedCrash

func SetBeforeEnd(c *Config, f func() error) { c.beforeEnd = f }
