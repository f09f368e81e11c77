package pgvalue

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// arrayNode is one parsed element of a Postgres array literal: a nested
// array (array true), NULL, or the unescaped text of a scalar. The
// outermost node of an array whose lower bounds are not all 1 carries
// them in lower, one per dimension.
type arrayNode struct {
	array bool
	elems []arrayNode
	null  bool
	text  []byte
	lower []int64
}

// parseArray parses the text output of array_out: an optional dimension
// decoration ("[0:2]=", printed when a lower bound is not 1), then
// "{...}" with elements separated by delim, double-quoted elements with
// backslash escapes, unquoted NULL, and nested braces for more dimensions.
func parseArray(src []byte, delim byte) (arrayNode, error) {
	p := arrayParser{src: src, delim: delim}
	lower, err := p.parseBounds()
	if err != nil {
		return arrayNode{}, err
	}
	p.skipSpace()
	n, err := p.parseArray(0)
	if err != nil {
		return arrayNode{}, err
	}
	p.skipSpace()
	if p.pos != len(src) {
		return arrayNode{}, fmt.Errorf("trailing data at offset %d", p.pos)
	}
	n.lower = lower
	return n, nil
}

// parseBounds reads the dimension decoration "[l1:u1][l2:u2]=" and returns
// the lower bounds, nil when there is none or every one is 1.
func (p *arrayParser) parseBounds() ([]int64, error) {
	var lower []int64
	nonDefault := false
	for p.pos < len(p.src) && p.src[p.pos] == '[' {
		end := bytes.IndexByte(p.src[p.pos:], ']')
		if end < 0 {
			return nil, errors.New("unterminated array dimension decoration")
		}
		lo, _, ok := strings.Cut(string(p.src[p.pos+1:p.pos+end]), ":")
		l, err := strconv.ParseInt(lo, 10, 32)
		if !ok || err != nil {
			return nil, fmt.Errorf("bad array dimension %q", p.src[p.pos:p.pos+end+1])
		}
		lower = append(lower, l)
		nonDefault = nonDefault || l != 1
		p.pos += end + 1
	}
	if lower == nil {
		return nil, nil
	}
	if p.pos >= len(p.src) || p.src[p.pos] != '=' {
		return nil, errors.New("array dimension decoration without '='")
	}
	p.pos++
	if !nonDefault {
		return nil, nil
	}
	return lower, nil
}

type arrayParser struct {
	src   []byte
	pos   int
	delim byte
}

// maxArrayDepth matches Postgres' MAXDIM.
const maxArrayDepth = 6

func (p *arrayParser) skipSpace() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r', '\v', '\f':
			p.pos++
		default:
			return
		}
	}
}

func (p *arrayParser) parseArray(depth int) (arrayNode, error) {
	if depth >= maxArrayDepth {
		return arrayNode{}, errors.New("array nested deeper than Postgres allows")
	}
	if p.pos >= len(p.src) || p.src[p.pos] != '{' {
		return arrayNode{}, fmt.Errorf("expected '{' at offset %d", p.pos)
	}
	p.pos++
	node := arrayNode{array: true, elems: []arrayNode{}}
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		return node, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.src) {
			return arrayNode{}, errors.New("unterminated array")
		}
		var (
			el  arrayNode
			err error
		)
		switch p.src[p.pos] {
		case '{':
			el, err = p.parseArray(depth + 1)
		case '"':
			el, err = p.parseQuoted()
		default:
			el, err = p.parseUnquoted()
		}
		if err != nil {
			return arrayNode{}, err
		}
		node.elems = append(node.elems, el)
		p.skipSpace()
		if p.pos >= len(p.src) {
			return arrayNode{}, errors.New("unterminated array")
		}
		switch c := p.src[p.pos]; {
		case c == '}':
			p.pos++
			return node, nil
		case c == p.delim:
			p.pos++
		default:
			return arrayNode{}, fmt.Errorf("unexpected %q at offset %d", c, p.pos)
		}
	}
}

func (p *arrayParser) parseQuoted() (arrayNode, error) {
	p.pos++ // opening quote
	var out []byte
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch c {
		case '\\':
			if p.pos+1 >= len(p.src) {
				return arrayNode{}, errors.New("unterminated escape")
			}
			out = append(out, p.src[p.pos+1])
			p.pos += 2
		case '"':
			p.pos++
			if out == nil {
				out = []byte{}
			}
			return arrayNode{text: out}, nil
		default:
			out = append(out, c)
			p.pos++
		}
	}
	return arrayNode{}, errors.New("unterminated quoted element")
}

func (p *arrayParser) parseUnquoted() (arrayNode, error) {
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == p.delim || c == '}' || c == '{' || c == '"' || c == '\\' {
			break
		}
		p.pos++
	}
	text := p.src[start:p.pos]
	// Unquoted elements have no leading or trailing white space in array_out.
	for len(text) > 0 && (text[len(text)-1] == ' ' || text[len(text)-1] == '\t' || text[len(text)-1] == '\n') {
		text = text[:len(text)-1]
	}
	if len(text) == 0 {
		return arrayNode{}, fmt.Errorf("empty unquoted element at offset %d", start)
	}
	if len(text) == 4 && (text[0]|0x20) == 'n' && (text[1]|0x20) == 'u' && (text[2]|0x20) == 'l' && (text[3]|0x20) == 'l' {
		return arrayNode{null: true}, nil
	}
	return arrayNode{text: append([]byte(nil), text...)}, nil
}
