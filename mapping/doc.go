// Package mapping is Chronicler's rule language: YAML rule files with
// expr-lang expressions, compiled once and evaluated per captured change
// (capture rules) and per stored event (promotion rules).
//
// Status: the package is being built (see the mapping issue).
package mapping
