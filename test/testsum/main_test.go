package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunCountsAndFails(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:3: figure: peak RSS 21.6 MiB\n"}`,
		`{"Action":"pass","Package":"p","Test":"TestA","Elapsed":0.1}`,
		`{"Action":"run","Package":"p","Test":"TestB"}`,
		`{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:9: no server\n"}`,
		`{"Action":"skip","Package":"p","Test":"TestB"}`,
		`{"Action":"run","Package":"p","Test":"TestC"}`,
		`{"Action":"output","Package":"p","Test":"TestC","Output":"boom\n"}`,
		`{"Action":"fail","Package":"p","Test":"TestC"}`,
		`{"Action":"fail","Package":"p"}`,
	}, "\n")
	var out bytes.Buffer
	if code := run(strings.NewReader(in), &out, false); code != 1 {
		t.Fatalf("exit %d; want 1 for a failed test", code)
	}
	s := out.String()
	for _, want := range []string{"1 passed, 1 failed, 1 skipped", "reason: b_test.go:9: no server", "boom", "p TestA: peak RSS 21.6 MiB"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

// TestFailureMessagesComeLast: the failed test's own messages are repeated
// after its output and the figures, and log-tail content is not.
func TestFailureMessagesComeLast(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Package":"example.com/m/p","Test":"TestD"}`,
		`{"Action":"output","Package":"example.com/m/p","Test":"TestD","Output":"    d_test.go:12: store has 298 streams, want 300\n"}`,
		`{"Action":"output","Package":"example.com/m/p","Test":"TestD","Output":"    d_test.go:40: instance a log tail:\n"}`,
		`{"Action":"output","Package":"example.com/m/p","Test":"TestD","Output":"        x.go:1: deep log line\n"}`,
		`{"Action":"output","Package":"example.com/m/p","Test":"TestD","Output":"    d_test.go:41: figure: 3 kills\n"}`,
		`{"Action":"fail","Package":"example.com/m/p","Test":"TestD"}`,
	}, "\n")
	var out bytes.Buffer
	run(strings.NewReader(in), &out, false)
	s := out.String()
	i := strings.LastIndex(s, "== why each failed ==")
	if i < 0 {
		t.Fatalf("no failure section:\n%s", s)
	}
	why := s[i:]
	if !strings.Contains(why, "TestD: d_test.go:12: store has 298 streams, want 300") {
		t.Errorf("failure section lacks the message:\n%s", why)
	}
	for _, not := range []string{"deep log line", "log tail", "3 kills"} {
		if strings.Contains(why, not) {
			t.Errorf("failure section has %q:\n%s", not, why)
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(s), "0 passed, 1 failed, 0 skipped") {
		t.Errorf("the tally is not last:\n%s", s)
	}
}

func TestRunNothingIsFailure(t *testing.T) {
	var out bytes.Buffer
	if code := run(strings.NewReader(`{"Action":"skip","Package":"p"}`), &out, false); code != 1 {
		t.Fatalf("exit %d; want 1 when no test ran", code)
	}
}

func TestRunUnfinishedTestIsFailure(t *testing.T) {
	in := `{"Action":"run","Package":"p","Test":"TestHang"}` + "\n" + `{"Action":"run","Package":"p","Test":"TestOK"}` + "\n" + `{"Action":"pass","Package":"p","Test":"TestOK"}`
	var out bytes.Buffer
	if code := run(strings.NewReader(in), &out, false); code != 1 {
		t.Fatalf("exit %d; want 1 for a test that never finished", code)
	}
}
