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
