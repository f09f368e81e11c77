package pgvalue

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Forms that pgtype does not read, so that a value's form depends on its
// type only (mapping/contract forms.go says how they are written).

// parseTimestamp reads what pgtype's text decoder does not: a year after
// 9999 ("10000-01-01 00:00:00", up to Postgres's 294276) and a timestamptz
// before Christ ("0044-03-15 00:00:00+00 BC"). It returns pgErr for
// anything else that is not a timestamp.
func parseTimestamp(text []byte, tz bool, pgErr error) (time.Time, error) {
	s := string(text)
	bc := strings.HasSuffix(s, " BC")
	s = strings.TrimSuffix(s, " BC")
	dash := strings.IndexByte(s, '-')
	if dash < 4 {
		return time.Time{}, pgErr
	}
	year, err := strconv.Atoi(s[:dash])
	if err != nil || year < 1 {
		return time.Time{}, pgErr
	}
	layout := "-01-02 15:04:05.999999999"
	if tz {
		i := strings.LastIndexAny(s, "+-")
		if i <= dash+6 { // the offset follows the time
			return time.Time{}, pgErr
		}
		layout += map[int]string{3: "Z07", 6: "Z07:00", 9: "Z07:00:00"}[len(s)-i]
	}
	t, err := time.Parse(layout, s[dash:])
	if err != nil {
		return time.Time{}, errors.Join(pgErr, err)
	}
	if bc {
		year = 1 - year // 1 BC is year 0 (ISO 8601, and Go's time)
	}
	return time.Date(year, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location()).UTC(), nil
}

// boundedArray is the form of an array whose lower bounds are not all 1
// (Postgres's default): {"lowerBounds": [l1, ...], "elements": [...]}. A
// JSON array cannot say where it starts, and dropping the bounds would lose
// them silently, so only these arrays are written as objects.
func boundedArray(lower []int64, elems any) map[string]any {
	lb := make([]any, len(lower))
	for i, l := range lower {
		lb[i] = l
	}
	return map[string]any{"lowerBounds": lb, "elements": elems}
}
