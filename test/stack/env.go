package stack

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// CacheDir is where installed test dependencies (Kafka jars, other Postgres
// majors) are kept between runs: $CHRONICLER_CACHE_DIR; by default
// /var/cache/chronicler for root (the servers run as an unprivileged user who
// must be able to read it, and root's home is closed to them) and
// $HOME/.cache/chronicler for everyone else.
func CacheDir() string {
	if d := os.Getenv("CHRONICLER_CACHE_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/cache/chronicler"
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".cache", "chronicler")
	}
	return filepath.Join(os.TempDir(), "chronicler-cache")
}

// freePort asks the kernel for a free TCP port on 127.0.0.1. There is a
// window between closing the probe listener and the server binding the port;
// servers that lose that race fail to start and the caller retries.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n lines of the file at path, for failure messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
