package stack

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RegistryVersion is the Apicurio Registry release the stack runs as its
// Confluent-compatible schema registry.
const RegistryVersion = "3.3.3"

// registryArtifact is the release's application, as Maven Central serves it.
const registryArtifact = "io.apicurio:apicurio-registry-app:" + RegistryVersion + ":tar.gz:all"

// RegistryAPI is the path of the Confluent-compatible API under the
// registry's address.
const RegistryAPI = "/apis/ccompat/v7"

// RegistryDir is where the registry is (or will be) installed.
func RegistryDir() string { return filepath.Join(CacheDir(), "apicurio-registry-"+RegistryVersion) }

// EnsureRegistry returns the directory holding the registry's quarkus-run.jar,
// fetching the release with Maven (dependency:copy) and unpacking it the
// first time. A second call reuses it.
func EnsureRegistry(logf func(string, ...any)) (string, error) {
	return mavenInstall(RegistryDir(), "the Apicurio Registry "+RegistryVersion+" files", logf, func(mvn, work string) (string, error) {
		dl := filepath.Join(work, "download")
		cmd := exec.Command(mvn, "-q", "-B", "dependency:copy", "-Dartifact="+registryArtifact, "-DoutputDirectory="+dl)
		cmd.Dir = work
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("mvn dependency:copy %s failed: %w\n%s", registryArtifact, err, out)
		}
		archives, _ := filepath.Glob(filepath.Join(dl, "*.tar.gz"))
		if len(archives) != 1 {
			return "", fmt.Errorf("Maven copied %d archives of %s into %s; want 1", len(archives), registryArtifact, dl)
		}
		app := filepath.Join(work, "app")
		if err := untarGz(archives[0], app); err != nil {
			return "", fmt.Errorf("unpacking %s: %w", archives[0], err)
		}
		if !fileExists(filepath.Join(app, "quarkus-run.jar")) {
			return "", fmt.Errorf("%s holds no quarkus-run.jar", archives[0])
		}
		return app, nil
	})
}

// untarGz unpacks a .tar.gz into dir: regular files and directories only,
// readable by everyone (the registry runs as the unprivileged user).
func untarGz(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if name == "." || strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			continue
		}
		p := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}

// registryJava finds a Java 21+ launcher (Apicurio Registry 3 needs one):
// $JAVA_HOME when it is one, else the newest JDK under /usr/lib/jvm.
func registryJava() (string, error) {
	var homes []string
	if h := os.Getenv("JAVA_HOME"); h != "" {
		homes = append(homes, h)
	}
	jvms, _ := filepath.Glob("/usr/lib/jvm/*")
	sort.Slice(jvms, func(i, j int) bool { return javaMajor(jvms[i]) > javaMajor(jvms[j]) })
	homes = append(homes, jvms...)
	for _, h := range homes {
		if p := filepath.Join(h, "bin", "java"); javaMajor(h) >= 21 && fileExists(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("the schema registry (Apicurio Registry %s) needs Java 21 or newer, and neither JAVA_HOME nor /usr/lib/jvm has one (Debian bookworm's is 17): install a JDK 21+ under /usr/lib/jvm", RegistryVersion)
}

// javaMajor reads JAVA_VERSION from a JDK's release file; 0 when unknown.
func javaMajor(home string) int {
	b, err := os.ReadFile(filepath.Join(home, "release"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(line, "JAVA_VERSION=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"`)
		v, _, _ = strings.Cut(v, ".")
		n, _ := strconv.Atoi(v)
		return n
	}
	return 0
}

// Registry is a real Confluent-compatible schema registry (Apicurio
// Registry, in-memory storage, global compatibility BACKWARD, Confluent's
// default) on a free port of 127.0.0.1.
type Registry struct {
	// URL is the Confluent API's base URL (…/apis/ccompat/v7), as
	// kafka.schema_registry.url takes it.
	URL string

	root, logPath string
	proc          *proc
}

// StartRegistry returns the registry a test talks to: the shared one named
// by CHRONICLER_TEST_REGISTRY_URL (./test/run.sh starts it) when set, else a
// dedicated one, removed by the test's cleanup. Tests sharing a registry
// must use unique subjects (unique topics do it). A registry that cannot be
// started fails the test.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	if u := os.Getenv("CHRONICLER_TEST_REGISTRY_URL"); u != "" {
		return &Registry{URL: u}
	}
	r, err := NewRegistry(t.Logf)
	if err != nil {
		t.Fatalf("stack: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// registryStartLimit bounds the registry's start: about 4 s on an idle
// 2-core machine, close to a minute when it is loaded.
const registryStartLimit = 4 * time.Minute

// NewRegistry starts a registry; Close stops it and removes its directory.
func NewRegistry(logf func(string, ...any)) (*Registry, error) {
	dir, err := EnsureRegistry(logf)
	if err != nil {
		return nil, err
	}
	java, err := registryJava()
	if err != nil {
		return nil, err
	}
	who, err := unprivileged()
	if err != nil {
		return nil, err
	}
	root, err := mkdirFor(who, "chronicler-registry-")
	if err != nil {
		return nil, fmt.Errorf("creating the registry directory: %w", err)
	}
	r := &Registry{root: root, logPath: filepath.Join(root, "registry.log")}
	for attempt := 0; ; attempt++ {
		err = r.start(who, java, dir)
		if err == nil || attempt == 2 || !strings.Contains(tail(r.logPath, 40), "Address already in use") {
			break
		}
		r.proc.kill()
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *Registry) start(who *runAs, java, dir string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	r.URL = fmt.Sprintf("http://127.0.0.1:%d%s", port, RegistryAPI)
	cmd, logf, err := command(who, r.logPath, java,
		"-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
		"-Djava.io.tmpdir="+r.root,
		"-Dquarkus.http.host=127.0.0.1", fmt.Sprintf("-Dquarkus.http.port=%d", port),
		// Without these the management interface listens on port 9000 of
		// every interface.
		"-Dquarkus.management.host=127.0.0.1", "-Dquarkus.management.port=0",
		"-Dapicurio.rules.global.compatibility=BACKWARD",
		"-jar", filepath.Join(dir, "quarkus-run.jar"))
	if err != nil {
		return err
	}
	cmd.Dir = r.root
	if r.proc, err = startProc(cmd, logf); err != nil {
		return err
	}
	return r.waitReady(registryStartLimit)
}

// waitReady polls the Confluent API until it lists the subjects.
func (r *Registry) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		if r.proc.exited() {
			return fmt.Errorf("the schema registry exited during start-up (%v); log tail:\n%s", r.proc.err, tail(r.logPath, 40))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.URL+"/subjects", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				cancel()
				return nil
			}
			err = fmt.Errorf("GET %s/subjects: %s", r.URL, resp.Status)
		}
		cancel()
		last = err
		time.Sleep(100 * time.Millisecond) // poll interval, not a wait for readiness
	}
	return fmt.Errorf("the schema registry did not answer on %s within %s (last error: %v); log tail:\n%s", r.URL, limit, last, tail(r.logPath, 40))
}

// Close stops the registry and removes its directory. It is idempotent; a
// shared registry (from CHRONICLER_TEST_REGISTRY_URL) is left alone.
func (r *Registry) Close() error {
	if r.proc != nil {
		r.proc.stop(syscall.SIGTERM, 20*time.Second)
	}
	if r.root != "" {
		err := os.RemoveAll(r.root)
		r.root = ""
		return err
	}
	return nil
}

// LogTail returns the last n lines of the registry's log ("" for a shared
// registry).
func (r *Registry) LogTail(n int) string {
	if r.logPath == "" {
		return ""
	}
	return tail(r.logPath, n)
}
