package stack

import (
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// KafkaVersion is the Apache Kafka broker version the stack runs; it must
// match kafka/pom.xml.
const KafkaVersion = "3.9.1"

//go:embed kafka/pom.xml
var kafkaPOM []byte

// KafkaLibDir is where the broker's jars are (or will be) installed.
func KafkaLibDir() string { return filepath.Join(CacheDir(), "kafka-"+KafkaVersion, "libs") }

// EnsureKafka returns the directory holding the broker's jars, resolving them
// with Maven (from kafka/pom.xml) the first time. A second call reuses them.
func EnsureKafka(logf func(string, ...any)) (string, error) {
	return mavenInstall(KafkaLibDir(), "the Apache Kafka "+KafkaVersion+" jars", logf, func(mvn, work string) (string, error) {
		pom := filepath.Join(work, "pom.xml")
		if err := os.WriteFile(pom, kafkaPOM, 0o644); err != nil {
			return "", err
		}
		libs := filepath.Join(work, "libs")
		cmd := exec.Command(mvn, "-q", "-B", "-f", pom, "dependency:copy-dependencies", "-DoutputDirectory="+libs)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("mvn dependency:copy-dependencies for Kafka %s failed: %w\n%s", KafkaVersion, err, out)
		}
		jars, _ := filepath.Glob(filepath.Join(libs, "kafka_2.13-*.jar"))
		if len(jars) == 0 {
			return "", fmt.Errorf("Maven resolved no kafka_2.13 jar into %s", libs)
		}
		return libs, nil
	})
}

// mavenInstall installs what into dir once: fetch, given Maven and a
// scratch directory beside dir, fills a directory and returns it; it is
// marked complete (readable by the unprivileged user the servers run as)
// and moved to dir. A second call finds dir complete and fetches nothing.
func mavenInstall(dir, what string, logf func(string, ...any), fetch func(mvn, work string) (string, error)) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return dir, nil
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return "", fmt.Errorf("%s are not in %s and Maven (mvn), needed to fetch them, is not on PATH: install Debian's maven package (./test/run.sh does)", what, dir)
	}
	logf("stack: fetching %s with Maven into %s", what, dir)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(filepath.Dir(dir), ".fetch-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	got, err := fetch(mvn, work)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(got, ".complete"), []byte(what+"\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.Chmod(got, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(got, dir); err != nil {
		// A concurrent installer may have won; theirs is as good as ours.
		if _, statErr := os.Stat(filepath.Join(dir, ".complete")); statErr != nil {
			return "", fmt.Errorf("installing %s into %s: %w", what, dir, err)
		}
	}
	return dir, nil
}

// javaBin finds the java launcher: $JAVA_HOME/bin/java, else PATH.
func javaBin() (string, error) {
	if h := os.Getenv("JAVA_HOME"); h != "" {
		if p := filepath.Join(h, "bin", "java"); fileExists(p) {
			return p, nil
		}
	}
	p, err := exec.LookPath("java")
	if err != nil {
		return "", fmt.Errorf("java not found (JAVA_HOME unset or wrong, none on PATH): the Kafka broker needs Java 17+, e.g. Debian's openjdk-17-jre-headless")
	}
	return p, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func javaClasspath(libDir string) string { return strings.TrimRight(libDir, "/") + "/*" }
