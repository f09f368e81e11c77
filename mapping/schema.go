package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Schema is the JSON Schema a promotion rule declares for its values (the
// rule's `schema` field): the contract of its integration events. It is
// immutable and safe for concurrent use.
type Schema struct {
	Rule  string // the promotion rule
	Topic string // the rule's topic
	Type  string // the rule's integration event type
	File  string // the schema file, "" when the schema is written in the rule
	Where string // where the rule declares it: "rules.yaml:12:13"
	Title string // the schema's "title", "" when it has none
	// Text is the schema as canonical JSON (compact, object keys sorted):
	// what a schema registry stores, equal for equal schemas whatever
	// their layout in the file.
	Text string
	// Doc is the decoded schema (maps, lists, json.Number, ...). Read only.
	Doc any

	compiled *jsonschema.Schema
}

// ErrSchemaViolation is matched (errors.Is) by a [*SchemaError].
var ErrSchemaViolation = errors.New("value violates the rule's schema")

// SchemaError is a value that does not conform to its rule's schema: the
// cause of an [EvalError] (field "value") at run time, and of a failing
// rule test.
type SchemaError struct {
	Rule   string
	Schema string // the schema file, or where the rule declares it inline
	// Reasons are the violations, one per failing keyword: "at /email: got
	// number, want string" (at most maxReasons, then a count of the rest).
	Reasons []string
}

const maxReasons = 5

func (e *SchemaError) Error() string {
	return fmt.Sprintf("value violates the rule's schema (%s): %s", e.Schema, strings.Join(e.Reasons, "; "))
}

// Is makes errors.Is(err, ErrSchemaViolation) true.
func (e *SchemaError) Is(target error) bool { return target == ErrSchemaViolation }

// Validate checks one value (JSON, as Promote writes it) against the schema.
// A violation is a *SchemaError.
func (s *Schema) Validate(value []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(value))
	if err != nil {
		return fmt.Errorf("%w: the value is not JSON: %v", ErrNotEncodable, err)
	}
	err = s.compiled.Validate(v)
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		return &SchemaError{Rule: s.Rule, Schema: s.source(), Reasons: reasons(ve)}
	}
	return err
}

func (s *Schema) source() string {
	if s.File != "" {
		return s.File
	}
	return "inline at " + s.Where
}

var printer = message.NewPrinter(language.English)

// reasons flattens a validation error to its leaves, "at <pointer>: <what>".
func reasons(ve *jsonschema.ValidationError) []string {
	var out []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		at := "/" + strings.Join(e.InstanceLocation, "/")
		out = append(out, fmt.Sprintf("at %s: %s", at, e.ErrorKind.LocalizedString(printer)))
	}
	walk(ve)
	if len(out) > maxReasons {
		out = append(out[:maxReasons], fmt.Sprintf("and %d more", len(out)-maxReasons))
	}
	return out
}

// Schema returns the schema of the promotion rule named rule, nil when the
// rule has none (or there is no such rule).
func (rs *RuleSet) Schema(rule string) *Schema {
	for _, r := range rs.promote {
		if r.name == rule {
			return r.schema
		}
	}
	return nil
}

// Schemas returns the schemas of the promotion rules that declare one, in
// rule order.
func (rs *RuleSet) Schemas() []*Schema {
	var out []*Schema
	for _, r := range rs.promote {
		if r.schema != nil {
			out = append(out, r.schema)
		}
	}
	return out
}

// SchemaFiles expands paths as [RuleFiles] does and returns the JSON files
// among them (*.json, sorted): schema files kept beside the rules, so that a
// change to one is seen as a change of the rule set.
func SchemaFiles(paths []string) []string {
	files, _ := expand(paths, func(p string) bool { return strings.HasSuffix(p, ".json") }, "schema files (*.json)")
	return files
}

// promoteSchema reads a rule's schema field: an inline JSON Schema written
// in YAML, or the path of a .json file relative to the rule file.
func (l *loader) promoteSchema(f field, r *promoteRule) *Schema {
	n := l.resolve(f.value)
	line, col := pos(n)
	s := &Schema{Rule: r.name, Topic: r.topic, Type: r.typ, Where: fmt.Sprintf("%s:%d:%d", l.file, line, col)}
	switch n.(type) {
	case *ast.MappingNode:
		doc, ok := l.jsonValue(n, r.name)
		if !ok {
			return nil
		}
		s.Doc = doc
	case *ast.StringNode:
		p, _ := l.scalarText(n)
		if !strings.HasSuffix(p, ".json") {
			l.addAt(n, r.name, fmt.Sprintf("schema file %q is not a .json file", p), "give the path of a JSON Schema file (*.json, relative to this rule file), or write the schema here as a mapping")
			return nil
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(l.file), p)
		}
		s.File = p
		doc, ok := l.readSchemaFile(n, r.name, p)
		if !ok {
			return nil
		}
		s.Doc = doc
	default:
		l.addAt(n, r.name, fmt.Sprintf("schema must be a mapping (a JSON Schema) or the path of a .json file, found %s", kindOf(n)), "e.g. schema: schemas/order-placed.json")
		return nil
	}
	obj, isObj := s.Doc.(map[string]any)
	if !isObj {
		l.addAt(n, r.name, "a schema must be a JSON object", "e.g. {type: object, properties: {...}, required: [...]}")
		return nil
	}
	if t, ok := obj["title"].(string); ok {
		s.Title = t
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s.Doc); err != nil {
		l.addAt(n, r.name, "schema: "+err.Error(), "")
		return nil
	}
	s.Text = strings.TrimSuffix(buf.String(), "\n")
	compiled, err := compileSchema(r.name, s.Doc)
	if err != nil {
		l.addAt(n, r.name, "invalid JSON Schema: "+compileProblem(err), "see json-schema.org; draft-07 unless the schema names another with $schema")
		return nil
	}
	s.compiled = compiled
	return s
}

// readSchemaFile decodes a schema file; a syntax error is placed at its
// line and column in that file.
func (l *loader) readSchemaFile(n ast.Node, rule, path string) (any, bool) {
	src, err := os.ReadFile(path)
	if err != nil {
		l.addAt(n, rule, "schema file: cannot read: "+describeFSError(err)+" ("+path+")", "the path is relative to this rule file")
		return nil, false
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(src))
	if err != nil {
		p := Problem{File: path, Rule: rule, Message: "schema file is not JSON: " + err.Error(), Hint: "fix the JSON syntax"}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			p.Line, p.Col = offsetPosition(src, int(se.Offset)-1) // Offset is just past the bad byte
		}
		l.problems = append(l.problems, p)
		return nil, false
	}
	return doc, true
}

// offsetPosition is the 1-based line and column of byte offset off.
func offsetPosition(src []byte, off int) (line, col int) {
	off = min(max(off, 0), len(src))
	line = 1 + bytes.Count(src[:off], []byte("\n"))
	col = off - bytes.LastIndexByte(src[:off], '\n')
	return line, col
}

// jsonValue converts a YAML node to the JSON value it spells (numbers as
// json.Number, like a schema file's).
func (l *loader) jsonValue(n ast.Node, rule string) (any, bool) {
	switch x := l.resolve(n).(type) {
	case *ast.MappingNode:
		fs, ok := l.fields(x, rule, "schema", nil)
		if !ok {
			return nil, false
		}
		m := make(map[string]any, len(fs))
		good := true
		for _, f := range fs {
			v, ok := l.jsonValue(f.value, rule)
			good = good && ok
			m[f.key] = v
		}
		return m, good
	case *ast.SequenceNode:
		out := make([]any, len(x.Values))
		good := true
		for i, v := range x.Values {
			var ok bool
			out[i], ok = l.jsonValue(v, rule)
			good = good && ok
		}
		return out, good
	case *ast.StringNode, *ast.LiteralNode:
		s, _ := l.scalarText(x)
		return s, true
	case *ast.BoolNode:
		return x.Value, true
	case *ast.NullNode:
		return nil, true
	case *ast.IntegerNode:
		return json.Number(fmt.Sprint(x.Value)), true
	case *ast.FloatNode:
		return json.Number(strconv.FormatFloat(x.Value, 'g', -1, 64)), true
	default:
		l.addAt(x, rule, fmt.Sprintf("schema: unsupported YAML %s", kindOf(x)), "")
		return nil, false
	}
}

// errExternalRef: a schema is registered as one document, and rules read
// no files or network at run time, so a schema may not refer outside itself.
var errExternalRef = errors.New(`only references inside the schema ("#/...") are supported`)

// noLoader refuses every reference outside the schema.
type noLoader struct{}

func (noLoader) Load(string) (any, error) { return nil, errExternalRef }

// schemaBase is the base URL a schema is compiled under.
const schemaBase = "mem://chronicler/rules/"

func compileSchema(rule string, doc any) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.AssertFormat()
	c.UseLoader(noLoader{})
	loc := schemaBase + url.PathEscape(rule) + ".json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, err
	}
	return c.Compile(loc)
}

// compileProblem says what is wrong with a schema that does not compile,
// in the schema's own terms (its JSON pointers, not the compiler's URLs).
func compileProblem(err error) string {
	var ve *jsonschema.SchemaValidationError
	var le *jsonschema.LoadURLError
	var inner *jsonschema.ValidationError
	switch {
	case errors.As(err, &ve) && errors.As(ve.Err, &inner):
		return strings.Join(reasons(inner), "; ")
	case errors.As(err, &le) && errors.Is(le.Err, errExternalRef):
		ref := strings.TrimPrefix(le.URL, schemaBase)
		return fmt.Sprintf("it refers to %q: %v", ref, errExternalRef)
	}
	return strings.ReplaceAll(strings.ReplaceAll(err.Error(), schemaBase, ""), "\n", "; ")
}

// TopicOf returns the topic of the promotion rule named rule ("" when there
// is no such rule).
func (rs *RuleSet) TopicOf(rule string) string {
	for _, r := range rs.promote {
		if r.name == rule {
			return r.topic
		}
	}
	return ""
}
