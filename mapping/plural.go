package mapping

import "strconv"

// Count writes n and a noun, the noun with an "s" unless n is 1: Count(1,
// "problem") is "1 problem", Count(3, "capture rule") "3 capture rules".
// Every count the rule checker and `chronicler rules` print goes through it.
func Count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
