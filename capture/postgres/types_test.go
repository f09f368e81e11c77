package postgres

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/test/stack"
)

const typeMatrixDDL = `
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE DOMAIN money2 AS numeric(12,2);
CREATE TYPE pair AS (a int, b text);
CREATE TABLE matrix (
  id int PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, n numeric, f4 float4, f8 float8,
  t text, vc varchar(10), c char(3), by bytea, u uuid, j json, jb jsonb,
  d date, tm time, ts timestamp, tstz timestamptz, iv interval, ip inet, cr cidr, mac macaddr,
  e mood, dm posint, dn money2, comp pair, pt point,
  arr_i int[], arr_t text[], arr_e mood[], arr_n numeric[], arr_ts timestamptz[], arr_j jsonb[],
  arr_by bytea[], arr_u uuid[], arr_2d int[][], arr_dm money2[],
  big text);`

const typeMatrixValues = `(%d, true, -32768, 2147483647, -9223372036854775808, 123456789012345678901234567890.123456789,
  1.5, 0.1, 'héllo ''q''', 'short', 'ab', '\x00ff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '{"k": [1, 2.50, null, "s"], "a": 1, "a": 2}', '{"n": 12345678901234567890.5, "b": false}',
  '2024-02-29', '13:14:15.5', '2024-02-29 13:14:15.123456', '2024-02-29 15:14:15.123456+02', '1 year 2 mons 3 days 04:05:06',
  '10.1.2.3/8', '10.0.0.0/8', '08:00:2b:01:02:03',
  'sad', 7, 10.5, ROW(1, 'x y'), '(1.5,2)',
  '{1,NULL,3}', '{"a,b",NULL,"q\"t"}', '{happy,sad}', '{1.10,NaN}', '{"2024-02-29 13:14:15.123456+00"}', ARRAY['{"a":1}'::jsonb],
  ARRAY['\x01ff'::bytea], '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', '{{1,2},{3,4}}', '{1.5}',
  (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 32768) i))`

// typeMatrixWant is what every column of typeMatrixValues must decode to
// (big is checked separately: 1 MiB of hex).
func typeMatrixWant(id int64) map[string]any {
	ts := time.Date(2024, 2, 29, 13, 14, 15, 123456000, time.UTC)
	return map[string]any{
		"id": id, "b": true, "i2": int64(-32768), "i4": int64(2147483647), "i8": int64(-9223372036854775808),
		"n":  json.Number("123456789012345678901234567890.123456789"),
		"f4": 1.5, "f8": 0.1, "t": "héllo 'q'", "vc": "short", "c": "ab ", "by": []byte{0, 0xff},
		"u":  "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		"j":  `{"k": [1, 2.50, null, "s"], "a": 1, "a": 2}`, // json: its text, as stored
		"jb": map[string]any{"n": json.Number("12345678901234567890.5"), "b": false},
		"d":  "2024-02-29", "tm": "13:14:15.5", "ts": ts, "tstz": ts, "iv": "1 year 2 mons 3 days 04:05:06",
		"ip": "10.1.2.3/8", "cr": "10.0.0.0/8", "mac": "08:00:2b:01:02:03",
		"e": "sad", "dm": int64(7), "dn": json.Number("10.50"),
		"arr_i":  []any{int64(1), nil, int64(3)},
		"arr_t":  []any{"a,b", nil, `q"t`},
		"arr_e":  []any{"happy", "sad"},
		"arr_n":  []any{json.Number("1.10"), json.Number("NaN")},
		"arr_ts": []any{ts},
		"arr_j":  []any{map[string]any{"a": json.Number("1")}},
		"arr_by": []any{[]byte{1, 0xff}},
		"arr_u":  []any{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		"arr_2d": []any{[]any{int64(1), int64(2)}, []any{int64(3), int64(4)}},
		"arr_dm": []any{json.Number("1.50")},
	}
}

// TestTypeMatrix round-trips every supported type through the snapshot (a
// SELECT) and the stream (pgoutput): both must decode to the same values,
// equal to the literal inserted. Composite and point come back as flagged
// Unknown text. A row of NULLs decodes to nil everywhere, and an update of
// another column leaves the 1 MiB TOASTed text marked Unchanged (not NULL,
// not "").
func TestTypeMatrix(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", typeMatrixDDL)
	pg.Exec(t, "postgres", "INSERT INTO matrix VALUES "+strings.Replace(typeMatrixValues, "%d", "1", 1))
	pg.Exec(t, "postgres", "INSERT INTO matrix (id) VALUES (2)")

	sink := newMemSink()
	startSource(t, baseConfig(pg, "postgres", "matrix"), sink)
	waitFor(t, 30*time.Second, "2 snapshot rows", func() bool { return len(sink.changes()) >= 2 })
	waitForSlotActive(t, pg, "chron")
	pg.Exec(t, "postgres", "INSERT INTO matrix VALUES "+strings.Replace(typeMatrixValues, "%d", "3", 1))
	pg.Exec(t, "postgres", "INSERT INTO matrix (id) VALUES (4)")
	pg.Exec(t, "postgres", "UPDATE matrix SET t = 'changed' WHERE id = 3")
	waitFor(t, 30*time.Second, "3 streamed changes", func() bool { return len(sink.changes()) >= 5 })

	var bigText string
	if err := pg.Connect(t, "postgres").QueryRow(t.Context(), "SELECT big FROM matrix WHERE id = 1").Scan(&bigText); err != nil {
		t.Fatal(err)
	}
	if len(bigText) != 1<<20 {
		t.Fatalf("big is %d bytes; want 1 MiB", len(bigText))
	}
	got := sink.changes()
	ops := []contract.Op{contract.OpSnapshot, contract.OpSnapshot, contract.OpInsert, contract.OpInsert, contract.OpUpdate}
	for i, op := range ops {
		if got[i].Op != op {
			t.Fatalf("change %d is %s; want %s", i, got[i].Op, op)
		}
	}
	for _, c := range []*contract.Change{got[0], got[2]} {
		id := c.New["id"].(int64)
		checkRow(t, id, c.New, typeMatrixWant(id), bigText)
	}
	for _, c := range []*contract.Change{got[1], got[3]} {
		for col, v := range c.New {
			if col != "id" && v != nil {
				t.Errorf("row %v column %s = %#v; want nil (SQL NULL)", c.New["id"], col, v)
			}
		}
		if len(c.New) != len(typeMatrixWant(0))+3 { // + comp, pt, big
			t.Errorf("NULL row has %d columns; want %d", len(c.New), len(typeMatrixWant(0))+3)
		}
	}
	upd := got[4]
	if !contract.IsUnchanged(upd.New["big"]) {
		t.Errorf("update of another column: big = %T; want contract.Unchanged", upd.New["big"])
	}
	if upd.New["t"] != "changed" || upd.Old != nil {
		t.Errorf("update: t = %v, old = %v; want changed and no old tuple (REPLICA IDENTITY DEFAULT)", upd.New["t"], upd.Old)
	}
}

func checkRow(t *testing.T, id int64, got, want map[string]any, big string) {
	t.Helper()
	for col, w := range want {
		if !reflect.DeepEqual(got[col], w) {
			t.Errorf("row %d column %s = %#v (%T); want %#v (%T)", id, col, got[col], got[col], w, w)
		}
	}
	comp, ok := got["comp"].(contract.Unknown)
	if !ok || comp.Text != `(1,"x y")` || comp.TypeName != "pair" {
		t.Errorf("row %d comp = %#v; want contract.Unknown pair (1,\"x y\")", id, got["comp"])
	}
	if pt, ok := got["pt"].(contract.Unknown); !ok || pt.Text != "(1.5,2)" {
		t.Errorf("row %d pt = %#v; want contract.Unknown (1.5,2)", id, got["pt"])
	}
	if got["big"] != big {
		t.Errorf("row %d big: %d bytes, differs from SELECT", id, len(asString(got["big"])))
	}
	var extra []string
	for col := range got {
		if _, ok := want[col]; !ok && col != "comp" && col != "pt" && col != "big" {
			extra = append(extra, col)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("row %d has unexpected columns %v", id, extra)
	}
}

func asString(v any) string { s, _ := v.(string); return s }
