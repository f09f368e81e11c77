package kurrentdb

import (
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/dlclark/regexp2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// filter is a server-side $all filter: on the stream name or the event type,
// by prefixes (StartsWith) or by an unanchored .NET regular expression
// (EventFilter.cs: new Regex(pattern, RegexOptions.Compiled), Match). The
// .NET semantics come from regexp2, a port of the .NET engine: lookaround
// and back-references work, RE2-only syntax such as (?P<n>...) is refused,
// \d and \w match Unicode digits and letters, [[:alpha:]] is not a POSIX
// class. Like the real server's filters on $all, it lets through only what
// an unfiltered $all read shows (see hiddenFromAll) before it matches.
type filter struct {
	byType   bool
	prefixes []string
	re       *regexp2.Regexp
	interval int // checkpoint every interval considered events
}

// defaultWindow is the search window when the client asks for "count".
const defaultWindow = 32

// errHandlerThrew is what the real server answers when a filter's
// construction throws (a regex .NET cannot parse; for a subscription, a
// checkpoint interval multiplier of 0): the exception escapes the handler
// and ASP.NET Core gRPC answers Unknown with this fixed text.
var errHandlerThrew = status.Error(codes.Unknown, "Exception was thrown by handler.")

// newFilter builds the filter of a read (subscription false: the checkpoint
// interval is not used and not checked, as ReadAllForwardsFiltered ignores
// it) or of a subscription.
func newFilter(fo *streams.ReadReq_Options_FilterOptions, subscription bool) (*filter, error) {
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
		re, err := regexp2.Compile(expr.GetRegex(), regexp2.None)
		if err != nil {
			return nil, errHandlerThrew
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
	if subscription && fo.GetCheckpointIntervalMultiplier() == 0 {
		return nil, errHandlerThrew
	}
	f.interval = window * int(fo.GetCheckpointIntervalMultiplier())
	return f, nil
}

// match applies the filter's own rule: the regex if there is one (an
// unanchored match), else any of the prefixes (none given: nothing matches,
// as the real server's Any over an empty list).
func (f *filter) match(r *record) bool {
	s := r.Stream
	if f.byType {
		s = r.Type
	}
	if f.re != nil {
		ok, err := f.re.MatchString(s)
		return ok && err == nil
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// allows reports whether a $all read or subscription delivers r: what an
// unfiltered $all shows, and then the filter if there is one.
func (f *filter) allows(r *record) bool {
	if hiddenFromAll(r.Stream) {
		return false
	}
	return f == nil || f.match(r)
}
