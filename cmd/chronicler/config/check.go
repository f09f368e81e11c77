package config

import "errors"

// Check validates a configuration built in code (`chronicler dev`, the
// benchmark) as Parse validates a file: every problem at once, each named
// by its path.
func (c *Config) Check(parts Parts) error {
	v := &validator{fromEnv: map[string]string{}}
	c.validate(v, parts)
	return errors.Join(v.errs...)
}
