package deploy

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

const dockerfile = "../Dockerfile"

// parseDockerfile parses the Dockerfile with BuildKit's parser, so a syntax
// error fails the suite.
func parseDockerfile(t *testing.T) []instructions.Stage {
	t.Helper()
	f, err := os.Open(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return stages
}

// TestDockerfileShape checks what the image promises: multi-stage, a
// minimal final base, a non-root user, the HTTP port, and the default
// command.
func TestDockerfileShape(t *testing.T) {
	stages := parseDockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("%d stages; want a build stage and a final stage", len(stages))
	}
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.BaseName, "gcr.io/distroless/static") && final.BaseName != "scratch" {
		t.Errorf("final base %q; want distroless static or scratch", final.BaseName)
	}
	var user string
	var exposed, entry, cmd []string
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.ExposeCommand:
			exposed = append(exposed, c.Ports...)
		case *instructions.EntrypointCommand:
			entry = c.CmdLine
		case *instructions.CmdCommand:
			cmd = c.CmdLine
		}
	}
	if u := strings.Split(user, ":")[0]; u == "" || u == "root" || u == "0" {
		t.Errorf("final USER %q; want a non-root user", user)
	}
	if len(exposed) == 0 {
		t.Error("no EXPOSE for the HTTP port")
	}
	if len(entry) != 1 || filepath.Base(entry[0]) != "chronicler" {
		t.Errorf("ENTRYPOINT %v; want the chronicler binary", entry)
	}
	if strings.Join(cmd, " ") != "run --config /etc/chronicler/chronicler.yaml" {
		t.Errorf("CMD %v; want run --config /etc/chronicler/chronicler.yaml", cmd)
	}
}

// TestDockerfileBuildsStaticBinary runs the Dockerfile's own `go build`
// command (its flags read from the RUN line, not repeated here), then proves
// the result is static (no interpreter, no shared libraries), trimmed (no
// build paths) and version-stamped.
func TestDockerfileBuildsStaticBinary(t *testing.T) {
	var run string
	for _, st := range parseDockerfile(t) {
		for _, c := range st.Commands {
			if r, ok := c.(*instructions.RunCommand); ok && strings.Contains(strings.Join(r.CmdLine, " "), "go build") {
				run = strings.Join(r.CmdLine, " ")
			}
		}
	}
	if run == "" {
		t.Fatal("the Dockerfile has no RUN line with go build")
	}
	// The build arguments: the version to stamp, and the target platform
	// (BuildKit sets TARGETOS/TARGETARCH; here the machine running the test).
	args := strings.NewReplacer("${VERSION}", "v0.0.0-imagecheck", "${TARGETOS}", runtime.GOOS, "${TARGETARCH}", runtime.GOARCH)
	if strings.Contains(args.Replace(run), "${") {
		t.Fatalf("RUN %s: a build argument the test does not know; add it to the replacer", run)
	}
	words, err := shellWords(args.Replace(run))
	if err != nil {
		t.Fatalf("RUN %s: %v", run, err)
	}
	var env []string
	for len(words) > 0 && strings.Contains(words[0], "=") {
		env = append(env, words[0])
		words = words[1:]
	}
	if !slices.Contains(env, "CGO_ENABLED=0") {
		t.Errorf("the build runs with %v; want CGO_ENABLED=0", env)
	}
	if len(words) < 2 || words[0] != "go" || words[1] != "build" || !slices.Contains(words, "-trimpath") {
		t.Fatalf("RUN %s: want `go build -trimpath ...`", run)
	}
	out := filepath.Join(t.TempDir(), "chronicler")
	for i, w := range words {
		if w == "-o" && i+1 < len(words) {
			words[i+1] = out
		}
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", words[1:]...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", run, err, b)
	}

	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has an ELF interpreter: it is dynamically linked")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(bin, []byte(root)) {
		t.Errorf("the binary contains the build path %s: -trimpath did not apply", root)
	}
	// No test code in the release binary: the function table (kept by -s -w)
	// names no package of the test servers, the in-process Kafka or the
	// Postgres installer that `chronicler dev` links in other builds.
	for _, pkg := range []string{"github.com/twmb/franz-go/pkg/kfake.", "github.com/chronicler-dev/chronicler/test/"} {
		if bytes.Contains(bin, []byte(pkg)) {
			t.Errorf("the image's binary contains code of %s: build it with -tags release", pkg)
		}
	}
	if out, err := exec.Command(out, "dev").CombinedOutput(); err == nil || !strings.Contains(string(out), "not in the release build") {
		t.Errorf("chronicler dev in the image's binary = %q, %v; want the release build's refusal", out, err)
	}
	v, err := exec.Command(out, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(v), "v0.0.0-imagecheck") {
		t.Fatalf("chronicler version = %q, %v; want the stamped version", v, err)
	}
	t.Logf("figure: image binary: %d MiB, static, version %q", len(bin)>>20, strings.TrimSpace(string(v)))
}

// shellWords splits a shell command line the way sh would for the simple
// forms a RUN line uses: words, double and single quotes.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, os.ErrInvalid
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

func TestShellWords(t *testing.T) {
	got, err := shellWords(`CGO_ENABLED=0 go build -ldflags "-s -w -X main.version=1" -o '/out/x y' ./cmd`)
	want := []string{"CGO_ENABLED=0", "go", "build", "-ldflags", "-s -w -X main.version=1", "-o", "/out/x y", "./cmd"}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("shellWords = %q, %v; want %q", got, err, want)
	}
	if _, err := shellWords(`go "unterminated`); err == nil {
		t.Fatal("an unterminated quote was accepted")
	}
}
