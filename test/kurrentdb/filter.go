package kurrentdb

import (
	"regexp"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// filter is a server-side $all filter: on the stream name or the event type,
// by prefixes (StartsWith) or by an unanchored regular expression (Go RE2
// syntax; the real server uses .NET regexes, which accept more).
type filter struct {
	byType   bool
	prefixes []string
	re       *regexp.Regexp
	interval int // checkpoint every interval considered events
}

// defaultWindow is the search window when the client asks for "count".
const defaultWindow = 32

func newFilter(fo *streams.ReadReq_Options_FilterOptions) (*filter, error) {
	if fo == nil {
		return nil, nil
	}
	f := &filter{}
	var expr *streams.ReadReq_Options_FilterOptions_Expression
	if e := fo.GetEventType(); e != nil {
		f.byType, expr = true, e
	} else {
		expr = fo.GetStreamIdentifier()
	}
	if expr.GetRegex() != "" {
		re, err := regexp.Compile(expr.GetRegex())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "invalid filter regex %q: %v", expr.GetRegex(), err)
		}
		f.re = re
	}
	f.prefixes = expr.GetPrefix()
	window := defaultWindow
	if m, ok := fo.GetWindow().(*streams.ReadReq_Options_FilterOptions_Max); ok {
		window = int(m.Max)
	}
	if window <= 0 {
		return nil, status.Error(codes.InvalidArgument, "the filter's max search window must be > 0")
	}
	if fo.GetCheckpointIntervalMultiplier() == 0 {
		return nil, status.Error(codes.InvalidArgument, "the filter's checkpoint interval multiplier must be > 0")
	}
	f.interval = window * int(fo.GetCheckpointIntervalMultiplier())
	return f, nil
}

func (f *filter) match(r *record) bool {
	s := r.Stream
	if f.byType {
		s = r.Type
	}
	if f.re != nil {
		return f.re.MatchString(s)
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return len(f.prefixes) == 0
}

// allows reports whether a $all read or subscription delivers r: the filter
// if there is one, otherwise everything but the hidden system streams.
func (f *filter) allows(r *record) bool {
	if f == nil {
		return !hiddenFromAll(r.Stream)
	}
	return f.match(r)
}
