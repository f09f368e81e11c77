package contract

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// decodeCases are documents the fast parser must read exactly as
// encoding/json does, and malformed ones it must refuse as encoding/json
// does: every escape, surrogate pairs and lone surrogates, invalid UTF-8,
// numbers at the edges of int64 and float64, repeated keys, nesting, and
// the metadata capture writes.
var decodeCases = []string{
	`{"id":1,"name":"a","ok":true,"none":null,"n":-0,"f":1.5,"e":1e3,"big":9223372036854775807,"bigger":9223372036854775808,"neg":-9223372036854775809}`,
	`[1,"two",[3,[4]],{"five":5},[],{}]`,
	` {"a" : [ 1 , 2 ] , "b" : { } } `,
	`"\u00e9\ud83d\ude00\ud800\udc00\ud800x\udc00\ud800\u0041\\\/\"\b\f\n\r\t"`,
	"\"\xff\xfe valid \xe2\x82\xac invalid \xe2\x82\"",
	`{"a":1,"a":2}`,
	`1e400`, `-1e400`, `1e-400`, `0.1`, `12345678901234567890123`, `-0.0`, `0E0`, `1E+2`,
	`true`, `false`, `null`, `""`, `"\u2028"`,
	`{"$causationId":"0b1c","$correlationId":"0/1A2B3D00","commitLsn":"0/1A2B3D00","commitTime":"2026-11-23T14:33:00.123456Z","database":"bench","index":0,"lsn":"0/1A2B3C00","op":"insert","ordinal":2,"rule":"bulk-row-inserted","schema":"public","slot":"chronicler","table":"bench_bulk","xid":7,"reason":"rule"}`,
	`{"slot\"":1,"slot\\":2,"sl\u006ft":3}`,
	// malformed
	``, ` `, `{`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{1:2}`, `[1 2]`, `01`, `-`, `1.`, `.5`, `1e`, `+1`, `--1`,
	`"abc`, "\"a\x01b\"", `"\x"`, `"\u12"`, `"\u12G4"`, `"\ud800\u12"`, `tru`, `nul`, `1 2`, `{} x`, `[]]`, `NaN`, `Infinity`,
	"\xef\xbb\xbf{}", `{"a":1}}`, `'a'`,
}

func TestDecodeJSONMatchesEncodingJSON(t *testing.T) {
	cases := append([]string{strings.Repeat("[", 10000) + strings.Repeat("]", 10000), strings.Repeat("[", 10001) + strings.Repeat("]", 10001)}, decodeCases...)
	for _, c := range cases {
		same(t, []byte(c))
	}
}

// same fails unless DecodeJSON and encoding/json (decodeJSONStd) give the
// same value, or both an error.
func same(t *testing.T, b []byte) {
	t.Helper()
	got, gerr := DecodeJSON(b)
	want, werr := decodeJSONStd(b)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("%.200q: DecodeJSON error %v, encoding/json error %v", b, gerr, werr)
	}
	if gerr != nil {
		if gerr.Error() != werr.Error() {
			t.Fatalf("%.200q: DecodeJSON error %q; want encoding/json's %q", b, gerr, werr)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%.200q:\n DecodeJSON  %#v\nencoding/json %#v", b, got, want)
	}
}

// FuzzDecodeJSON holds the fast parser to encoding/json on any input.
func FuzzDecodeJSON(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) { same(t, b) })
}

// TestDecodeJSONReadsMetadataBack: what AppendMetadata writes reads back
// through DecodeJSON to the map metadataMap builds (the promotion rules'
// event.metadata), the time as its RFC 3339 text.
func TestDecodeJSONReadsMetadataBack(t *testing.T) {
	src := testSource()
	extra := map[string]any{"tenant": "acme", "n": int64(3)}
	b, err := AppendMetadata(nil, &src, extra)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	want := metadataMap(&src, extra)
	want[MetaCommitTime] = src.CommitTime.UTC().Format(time.RFC3339Nano)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read back %#v\nwant %#v", got, want)
	}
}

func BenchmarkDecodeJSON(b *testing.B) {
	src := testSource()
	meta, _ := AppendMetadata(nil, &src, nil)
	data := []byte(`{"account":17,"amount":"12.50","created":"2026-11-23T14:33:00.123456Z","id":170017,"note":"row 170017"}`)
	for _, c := range []struct {
		name string
		f    func([]byte) (any, error)
	}{{"fast", DecodeJSON}, {"encoding-json", decodeJSONStd}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.f(meta); err != nil {
					b.Fatal(err)
				}
				if _, err := c.f(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzDecodeSource holds DecodeSource to SourceFromMap over DecodeJSON's
// map: the same source, ok and error for any bytes.
func FuzzDecodeSource(f *testing.F) {
	src := testSource()
	meta, _ := AppendMetadata(nil, &src, map[string]any{"tenant": "acme", "nested": map[string]any{"a": []any{int64(1)}}})
	f.Add(meta)
	f.Add([]byte(`{"slot":"s","ordinal":1,"index":0,"commitLsn":"0/10","slot":"t"}`))
	f.Add([]byte(`{"slot":"s","ordinal":-1,"index":0,"commitLsn":"0/10"}`))
	f.Add([]byte(`[1]`))
	f.Add([]byte(`{"slot":`))
	for _, c := range decodeCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, gok, gerr := DecodeSource(b)
		v, werr := DecodeJSON(b)
		obj, _ := v.(map[string]any)
		want, wok := SourceFromMap(obj)
		if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
			t.Fatalf("%q: DecodeSource error %v; DecodeJSON's %v", b, gerr, werr)
		}
		if gok != wok || !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: DecodeSource = %+v, %v; SourceFromMap = %+v, %v", b, got, gok, want, wok)
		}
	})
}

func BenchmarkDecodeSource(b *testing.B) {
	src := testSource()
	meta, _ := AppendMetadata(nil, &src, nil)
	b.Run("typed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok, _ := DecodeSource(meta); !ok {
				b.Fatal("not a source")
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v, _ := DecodeJSON(meta)
			if _, ok := SourceFromMap(v.(map[string]any)); !ok {
				b.Fatal("not a source")
			}
		}
	})
}

// TestDecodeJSONKeepsNumbersExact: integers in int64's range decode as
// int64, every other number as json.Number with its stored text, and
// AppendJSON writes the decoded value back byte for byte.
func TestDecodeJSONKeepsNumbersExact(t *testing.T) {
	const in = `{"a":[3.14159265358979323846264338327950288419,99999999999999999999.9999999999,12.3400,-9223372036854775808,` +
		`9223372036854775808,2.5,0.1,1E-7,7]}`
	v, err := DecodeJSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": []any{json.Number("3.14159265358979323846264338327950288419"), json.Number("99999999999999999999.9999999999"),
		json.Number("12.3400"), int64(-9223372036854775808), json.Number("9223372036854775808"), json.Number("2.5"),
		json.Number("0.1"), json.Number("1E-7"), int64(7)}}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("decoded %#v\nwant %#v", v, want)
	}
	out, err := AppendJSON(nil, v, UnchangedError)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Fatalf("written back %s\nwant %s", out, in)
	}
}
