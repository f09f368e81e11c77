package mapping

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// IsTestFile reports whether path names a rules test file (*_test.yaml or
// *_test.yml), which Load skips and `chronicler rules test` runs.
func IsTestFile(path string) bool {
	b := filepath.Base(path)
	return strings.HasSuffix(b, "_test.yaml") || strings.HasSuffix(b, "_test.yml")
}

func isYAML(path string) bool {
	return strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")
}

// RuleFiles expands paths (files or directories, searched recursively) into
// the sorted list of rule files Load reads: *.yaml and *.yml, minus test
// files. Paths that cannot be read are reported as problems.
func RuleFiles(paths []string) ([]string, []Problem) {
	return expand(paths, func(p string) bool { return isYAML(p) && !IsTestFile(p) }, "rule files (*.yaml, *.yml)")
}

// TestFiles expands paths like RuleFiles but returns the test files; for a
// rule file given by name it also picks up the test files in its directory.
func TestFiles(paths []string) ([]string, []Problem) {
	var dirs []string
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && !st.IsDir() && !IsTestFile(p) {
			dirs = append(dirs, filepath.Dir(p))
		} else {
			dirs = append(dirs, p)
		}
	}
	files, probs := expand(dirs, IsTestFile, "test files (*_test.yaml)")
	return files, probs
}

func expand(paths []string, keep func(string) bool, what string) ([]string, []Problem) {
	var files []string
	var probs []Problem
	seen := map[string]bool{}
	add := func(f string) {
		if !seen[f] {
			seen[f] = true
			files = append(files, f)
		}
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			probs = append(probs, Problem{File: p, Message: "cannot read: " + describeFSError(err), Hint: "check the path"})
			continue
		}
		if !st.IsDir() {
			if keep(p) {
				add(p)
			}
			continue
		}
		n := 0
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				probs = append(probs, Problem{File: path, Message: "cannot read: " + describeFSError(err)})
				return nil
			}
			if d.IsDir() && path != p && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if !d.IsDir() && keep(path) {
				add(path)
				n++
			}
			return nil
		})
		if err == nil && n == 0 {
			probs = append(probs, Problem{File: p, Message: "no " + what + " in this directory", Hint: "give a directory holding them, or the files themselves"})
		}
	}
	sort.Strings(files)
	return files, probs
}

func describeFSError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Load reads the rule files in paths (files, or directories searched
// recursively for *.yaml and *.yml, test files excepted), checks them and
// compiles every expression. It reports every problem in every file at once:
// the error is a *LoadError listing them in file, line, column order.
func Load(paths []string, opts Options) (*RuleSet, error) {
	files, probs := RuleFiles(paths)
	l := &loader{opts: opts, problems: probs, captureNames: map[string]string{}, promoteNames: map[string]string{}}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			l.problems = append(l.problems, Problem{File: f, Message: "cannot read: " + describeFSError(err)})
			continue
		}
		l.loadFile(f, src)
	}
	if len(files) == 0 && len(l.problems) == 0 {
		l.problems = append(l.problems, Problem{File: strings.Join(paths, ","), Message: "no rule files given", Hint: "pass rule files or directories"})
	}
	return l.finish(files)
}

// LoadBytes compiles one rule file held in memory; name is used in problems.
func LoadBytes(name string, src []byte, opts Options) (*RuleSet, error) {
	l := &loader{opts: opts, captureNames: map[string]string{}, promoteNames: map[string]string{}}
	l.loadFile(name, src)
	return l.finish([]string{name})
}

func (l *loader) finish(files []string) (*RuleSet, error) {
	if len(l.problems) > 0 {
		sort.SliceStable(l.problems, func(i, j int) bool {
			a, b := l.problems[i], l.problems[j]
			if a.File != b.File {
				return a.File < b.File
			}
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Col < b.Col
		})
		return nil, &LoadError{Problems: l.problems}
	}
	rs := newRuleSet(files, l.capture, l.promote)
	rs.catalogue = l.opts.Catalogue
	return rs, nil
}

// loader collects compiled rules and problems across files.
type loader struct {
	opts         Options
	problems     []Problem
	file         string
	anchors      map[string]ast.Node
	capture      []*captureRule
	promote      []*promoteRule
	captureNames map[string]string // name → "file:line" of its definition
	promoteNames map[string]string
	reads        *reads // the capture rule being compiled, for noteReads
}

func (l *loader) loadFile(name string, src []byte) {
	l.file = name
	l.anchors = map[string]ast.Node{}
	f, err := parser.ParseBytes(src, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		l.yamlError(err)
		return
	}
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		body := l.resolve(doc.Body)
		if _, ok := body.(*ast.NullNode); ok {
			continue
		}
		fs, ok := l.fields(body, "", "a rule file", []string{"capture", "promote"})
		if !ok {
			continue
		}
		for _, fl := range fs {
			v := l.resolve(fl.value)
			if _, ok := v.(*ast.NullNode); ok {
				continue
			}
			seq, ok := v.(*ast.SequenceNode)
			if !ok {
				l.addAt(v, "", fmt.Sprintf("%s must be a list of rules, found %s", fl.key, kindOf(v)), "start each rule with '- name: ...'")
				continue
			}
			for _, item := range seq.Values {
				if fl.key == "capture" {
					l.captureRule(item)
				} else {
					l.promoteRule(item)
				}
			}
		}
	}
}

func (l *loader) yamlError(err error) {
	var se *parserSyntaxError
	if errors.As(err, &se) && se.Token != nil && se.Token.Position != nil {
		l.problems = append(l.problems, Problem{File: l.file, Line: se.Token.Position.Line, Col: se.Token.Position.Column,
			Message: "YAML syntax: " + se.Message, Hint: "fix the YAML syntax; problems after this point in the file are not reported"})
		return
	}
	l.problems = append(l.problems, Problem{File: l.file, Message: "YAML: " + err.Error()})
}

// ruleHead reads a rule's name (unique among kind's rules) and its fields
// (what names the rule in messages, known its allowed keys); ok is false
// when either is unusable (a problem was reported).
func (l *loader) ruleHead(n ast.Node, kind string, names map[string]string, what string, known []string) (string, []field, bool) {
	name, ok := l.ruleName(n, kind, names)
	if !ok {
		return "", nil, false
	}
	fs, ok := l.fields(n, name, what, known)
	return name, fs, ok
}

// ruleName reads the name of rule mapping n for use in later problems.
func (l *loader) ruleName(n ast.Node, kind string, names map[string]string) (string, bool) {
	m, ok := l.resolve(n).(*ast.MappingNode)
	if !ok {
		l.addAt(n, "", fmt.Sprintf("a %s rule must be a mapping, found %s", kind, kindOf(l.resolve(n))), "")
		return "", false
	}
	for _, mv := range m.Values {
		if k, ok := l.resolve(mv.Key).(*ast.StringNode); ok && k.Value == "name" {
			s, ok := l.scalarText(mv.Value)
			if !ok || strings.TrimSpace(s) == "" {
				l.addAt(mv.Value, "", "rule name must be a non-empty string", "")
				return "", true
			}
			line, _ := pos(mv.Value)
			where := fmt.Sprintf("%s:%d", l.file, line)
			if first, dup := names[s]; dup {
				l.addAt(mv.Value, s, fmt.Sprintf("duplicate %s rule name", kind), "rule names must be unique across all files; first defined at "+first)
			} else {
				names[s] = where
			}
			return s, true
		}
	}
	l.addAt(n, "", fmt.Sprintf("%s rule without a name", kind), "add name: some-rule-name")
	return "", true
}
