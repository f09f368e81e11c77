package contract

import (
	"encoding/json"
	"fmt"
	"testing"
)

func TestOpRoundTrip(t *testing.T) {
	for op := OpInsert; op <= OpMessage; op++ {
		got, ok := ParseOp(op.String())
		if !ok || got != op {
			t.Fatalf("ParseOp(%q) = %v, %v; want %v", op.String(), got, ok, op)
		}
	}
	if _, ok := ParseOp("upsert"); ok {
		t.Fatal("ParseOp accepted an unknown operation")
	}
}

func TestLSNRoundTrip(t *testing.T) {
	for _, l := range []LSN{0, 1, 0x16B374D848, 1<<64 - 1} {
		got, err := ParseLSN(l.String())
		if err != nil || got != l {
			t.Fatalf("ParseLSN(%q) = %v, %v; want %v", l.String(), got, err, l)
		}
	}
	for _, bad := range []string{"nonsense", "", "/", "1/", "/2", "1/2/3", "1/2junk", "100000000/0", "-1/0"} {
		if _, err := ParseLSN(bad); err == nil {
			t.Fatalf("ParseLSN accepted %q", bad)
		}
	}
}

func FuzzParseLSN(f *testing.F) {
	for _, s := range []string{"0/16B3748", "FFFFFFFF/FFFFFFFF", "1/0", "", "/", "x/y", "1/2/3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseLSN(s)
		if err != nil {
			return
		}
		back, err := ParseLSN(v.String())
		if err != nil || back != v {
			t.Fatalf("ParseLSN(%q) = %d, round trip %d, %v", s, v, back, err)
		}
	})
}

func TestUnchangedIsNotNull(t *testing.T) {
	b, err := json.Marshal(map[string]any{"a": Unchanged, "b": nil})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"a":{"$unchanged":true},"b":null}` {
		t.Fatalf("got %s", b)
	}
	if !IsUnchanged(Unchanged) || IsUnchanged(nil) || IsUnchanged("") {
		t.Fatal("IsUnchanged misclassifies")
	}
}

func TestLSNStringIsPostgresText(t *testing.T) {
	for _, l := range []LSN{0, 1, 0xF, 0x10, 0xB374D848, 0x16_B374D848, 0xFFFFFFFF_FFFFFFFF, 0x1_00000000, 0xABCDEF01_00000010} {
		if got, want := l.String(), fmt.Sprintf("%X/%X", uint32(l>>32), uint32(l)); got != want {
			t.Errorf("LSN(%#x).String() = %q, want %q", uint64(l), got, want)
		}
	}
}
