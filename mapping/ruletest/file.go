package ruletest

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// Case is one test case read from a test file.
type Case struct {
	File string
	Line int
	Name string

	Changes []contract.Change     // input: one source transaction
	Stored  []mapping.StoredEvent // input: stored events (instead of Changes)

	Events      []map[string]any // expected low-level events; nil: not checked
	Integration []map[string]any // expected integration events; nil: not checked
	Errors      []map[string]any // expected rule failures ({rule, field}); nil: none expected
}

var caseFields = []string{"name", "tx", "changes", "stored", "events", "integration", "errors"}
var changeFields = []string{"op", "table", "database", "new", "old", "key", "message", "lsn"}
var storedFields = []string{"id", "stream", "revision", "position", "type", "data", "metadata", "created"}
var eventFields = []string{"rule", "stream", "type", "data", "metadata"}
var integrationFields = []string{"rule", "topic", "key", "type", "subject", "value", "headers"}
var errorFields = []string{"rule", "field"}

type reader struct {
	file  string
	probs []mapping.Problem
}

func (r *reader) add(n ast.Node, msg, hint string) {
	line, col := 0, 0
	if n != nil && n.GetToken() != nil && n.GetToken().Position != nil {
		line, col = n.GetToken().Position.Line, n.GetToken().Position.Column
	}
	r.probs = append(r.probs, mapping.Problem{File: r.file, Line: line, Col: col, Message: msg, Hint: hint})
}

// ReadFile parses one test file.
func ReadFile(path string) ([]Case, []mapping.Problem) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, []mapping.Problem{{File: path, Message: "cannot read: " + err.Error()}}
	}
	return Parse(path, src)
}

// Parse parses test file content; name is used in problems.
func Parse(name string, src []byte) ([]Case, []mapping.Problem) {
	r := &reader{file: name}
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		r.probs = append(r.probs, mapping.Problem{File: name, Message: "YAML: " + strings.ReplaceAll(err.Error(), "\n", " ")})
		return nil, r.probs
	}
	var cases []Case
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		top := r.mapping(doc.Body, "a test file", []string{"tests"})
		seq, ok := top["tests"].(*ast.SequenceNode)
		if !ok {
			r.add(doc.Body, "a test file needs a list under tests:", "see the format in `chronicler rules docs rule-tests`")
			continue
		}
		for _, item := range seq.Values {
			if c, ok := r.readCase(item); ok {
				cases = append(cases, c)
			}
		}
	}
	return cases, r.probs
}

// mapping returns the fields of a YAML mapping, reporting unknown keys.
func (r *reader) mapping(n ast.Node, what string, known []string) map[string]ast.Node {
	m, ok := n.(*ast.MappingNode)
	if !ok {
		r.add(n, what+" must be a mapping", "")
		return nil
	}
	out := map[string]ast.Node{}
	for _, mv := range m.Values {
		k := mv.Key.String()
		if !slices.Contains(known, k) {
			r.add(mv.Key, fmt.Sprintf("unknown field %q in %s", k, what), "known fields: "+strings.Join(known, ", "))
			continue
		}
		out[k] = mv.Value
	}
	return out
}

func (r *reader) value(n ast.Node) any {
	var v any
	if err := yaml.NodeToValue(n, &v); err != nil {
		r.add(n, "cannot read value: "+err.Error(), "")
		return nil
	}
	return normalizeYAML(v)
}

// normalizeYAML turns YAML-decoded values into the change value domain:
// integers int64, {$unchanged: true} the Unchanged marker.
func normalizeYAML(v any) any {
	switch x := v.(type) {
	case uint64:
		return int64(x)
	case int:
		return int64(x)
	case uint:
		return int64(x)
	case float32:
		return float64(x)
	case map[string]any:
		if len(x) == 1 && x["$unchanged"] == true {
			return contract.Unchanged
		}
		for k, e := range x {
			x[k] = normalizeYAML(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalizeYAML(e)
		}
		return x
	}
	return v
}

func (r *reader) readCase(n ast.Node) (Case, bool) {
	line := 0
	if t := n.GetToken(); t != nil && t.Position != nil {
		line = t.Position.Line
	}
	c := Case{File: r.file, Line: line}
	before := len(r.probs)
	fs := r.mapping(n, "a test case", caseFields)
	if fs == nil {
		return c, false
	}
	if v, ok := fs["name"]; ok {
		c.Name = fmt.Sprint(r.value(v))
	} else {
		r.add(n, "test case without a name", "add name: ...")
	}
	tx := r.readTx(fs["tx"])
	_, hasChanges := fs["changes"]
	_, hasStored := fs["stored"]
	if hasChanges == hasStored {
		r.add(n, "a test case needs exactly one of changes or stored", "changes: row changes of one transaction; stored: events as read from the store")
	}
	if v, ok := fs["changes"]; ok {
		seq, ok := v.(*ast.SequenceNode)
		if !ok {
			r.add(v, "changes must be a list", "")
		} else {
			for i, item := range seq.Values {
				ch := r.readChange(item)
				ch.Tx = tx
				ch.Ordinal = uint64(i)
				ch.LSN = tx.CommitLSN - contract.LSN(len(seq.Values)-i)*0x100
				c.Changes = append(c.Changes, ch)
			}
		}
	}
	if v, ok := fs["stored"]; ok {
		seq, ok := v.(*ast.SequenceNode)
		if !ok {
			r.add(v, "stored must be a list", "")
		} else {
			for i, item := range seq.Values {
				c.Stored = append(c.Stored, r.readStored(item, i, tx))
			}
		}
	}
	c.Events = r.expectations(fs, "events", eventFields)
	c.Integration = r.expectations(fs, "integration", integrationFields)
	c.Errors = r.expectations(fs, "errors", errorFields)
	if c.Events == nil && c.Integration == nil && c.Errors == nil {
		r.add(n, "a test case expects nothing", "add events:, integration: or errors: (an empty list [] expects no output)")
	}
	return c, len(r.probs) == before
}

// readTx reads a case's tx (nil: none), the transaction its changes
// belong to, with defaults for what it leaves out.
func (r *reader) readTx(v ast.Node) contract.Tx {
	tx := contract.Tx{XID: 1, CommitLSN: 0x1000000, CommitTime: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	if v == nil {
		return tx
	}
	m := r.mapping(v, "tx", []string{"xid", "commitLsn", "commitTime", "origin"})
	if x, ok := m["xid"]; ok {
		if i, ok := r.value(x).(int64); ok {
			tx.XID = uint32(i)
		} else {
			r.add(x, "tx.xid must be an integer", "")
		}
	}
	if x, ok := m["commitLsn"]; ok {
		l, err := contract.ParseLSN(fmt.Sprint(r.value(x)))
		if err != nil {
			r.add(x, "tx.commitLsn: "+err.Error(), "write it as Postgres does, e.g. 0/16B3748")
		}
		tx.CommitLSN = l
	}
	if x, ok := m["commitTime"]; ok {
		t, err := time.Parse(time.RFC3339Nano, fmt.Sprint(r.value(x)))
		if err != nil {
			r.add(x, "tx.commitTime: "+err.Error(), "write it in RFC 3339, e.g. 2024-05-01T10:00:00Z")
		}
		tx.CommitTime = t.UTC()
	}
	if x, ok := m["origin"]; ok {
		tx.Origin = fmt.Sprint(r.value(x))
	}
	return tx
}

func (r *reader) expectations(fs map[string]ast.Node, key string, known []string) []map[string]any {
	v, ok := fs[key]
	if !ok {
		return nil
	}
	out := []map[string]any{}
	seq, ok := v.(*ast.SequenceNode)
	if !ok {
		r.add(v, key+" must be a list", "use [] to expect none")
		return out
	}
	for _, item := range seq.Values {
		if r.mapping(item, "an expected "+key+" entry", known) == nil {
			continue
		}
		m, _ := r.value(item).(map[string]any)
		out = append(out, m)
	}
	return out
}

func (r *reader) readChange(n ast.Node) contract.Change {
	var ch contract.Change
	fs := r.mapping(n, "a change", changeFields)
	if fs == nil {
		return ch
	}
	ch.Database = "app"
	opN, ok := fs["op"]
	if !ok {
		r.add(n, "a change needs op", "insert, update, delete, truncate, snapshot or message")
	} else {
		op, ok := contract.ParseOp(fmt.Sprint(r.value(opN)))
		if !ok {
			r.add(opN, "unknown op", "insert, update, delete, truncate, snapshot or message")
		}
		ch.Op = op
	}
	if v, ok := fs["table"]; ok {
		t := fmt.Sprint(r.value(v))
		ch.Schema, ch.Table = "public", t
		if s, tb, ok := strings.Cut(t, "."); ok {
			ch.Schema, ch.Table = s, tb
		}
	} else if ch.Op != contract.OpMessage {
		r.add(n, "a change needs table", "e.g. table: public.customers")
	}
	if v, ok := fs["database"]; ok {
		ch.Database = fmt.Sprint(r.value(v))
	}
	if v, ok := fs["new"]; ok {
		ch.New, _ = r.value(v).(map[string]any)
	}
	if v, ok := fs["old"]; ok {
		ch.Old, _ = r.value(v).(map[string]any)
	}
	if v, ok := fs["key"]; ok {
		if l, ok := r.value(v).([]any); ok {
			for _, k := range l {
				ch.Key = append(ch.Key, fmt.Sprint(k))
			}
		}
	}
	if v, ok := fs["message"]; ok {
		m := r.mapping(v, "message", []string{"prefix", "content", "transactional"})
		msg := &contract.Message{Transactional: true}
		if x, ok := m["prefix"]; ok {
			msg.Prefix = fmt.Sprint(r.value(x))
		}
		if x, ok := m["content"]; ok {
			msg.Content = []byte(fmt.Sprint(r.value(x)))
		}
		if x, ok := m["transactional"]; ok {
			msg.Transactional, _ = r.value(x).(bool)
		}
		ch.Message = msg
	}
	return ch
}

func (r *reader) readStored(n ast.Node, i int, tx contract.Tx) mapping.StoredEvent {
	ev := mapping.StoredEvent{ID: fmt.Sprintf("test-%d", i), Position: uint64(i + 1), Created: tx.CommitTime}
	fs := r.mapping(n, "a stored event", storedFields)
	if fs == nil {
		return ev
	}
	for _, req := range []string{"stream", "type"} {
		if _, ok := fs[req]; !ok {
			r.add(n, "a stored event needs "+req, "")
		}
	}
	if v, ok := fs["stream"]; ok {
		ev.Stream = fmt.Sprint(r.value(v))
	}
	if v, ok := fs["type"]; ok {
		ev.Type = fmt.Sprint(r.value(v))
	}
	if v, ok := fs["id"]; ok {
		ev.ID = fmt.Sprint(r.value(v))
	}
	if v, ok := fs["revision"]; ok {
		if x, ok := r.value(v).(int64); ok {
			ev.Revision = uint64(x)
		}
	}
	if v, ok := fs["position"]; ok {
		if x, ok := r.value(v).(int64); ok {
			ev.Position = uint64(x)
		}
	}
	if v, ok := fs["data"]; ok {
		ev.Data = r.value(v)
	}
	if v, ok := fs["metadata"]; ok {
		ev.Metadata, _ = r.value(v).(map[string]any)
	}
	if v, ok := fs["created"]; ok {
		t, err := time.Parse(time.RFC3339Nano, fmt.Sprint(r.value(v)))
		if err != nil {
			r.add(v, "created: "+err.Error(), "write it in RFC 3339")
		}
		ev.Created = t
	}
	return ev
}
