package mapping

import "strconv"

// Count writes n and a noun, the noun with an "s" unless n is 1: Count(1,
// "problem") is "1 problem", Count(3, "capture rule") "3 capture rules".
// Every count the rule checker and `chronicler rules` print goes through it.
func Count(n int, noun string) string {
	return strconv.Itoa(n) + " " + plural(n, noun, noun+"s")
}

// plural is one when n is 1, else many.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
