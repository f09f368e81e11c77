package mapping

import (
	_ "embed"
	"fmt"
	"regexp"
	"strings"
)

// readme is the rule language reference, README.md beside this file.
//
//go:embed README.md
var readme string

// DocTopic is one section of the rule language reference.
type DocTopic struct {
	Name  string // what `chronicler rules docs NAME` takes: the title in kebab case ("rule-tests")
	Title string // the section's heading ("Rule tests")
	Text  string // the section, its heading included, as Markdown
}

var (
	docHeading = regexp.MustCompile(`(?m)^## (.+)$`)
	docComment = regexp.MustCompile(`(?m)^<!--.*-->\n`)
)

// DocTopics lists the reference's sections (its "## " headings), in order.
func DocTopics() []DocTopic {
	text := docComment.ReplaceAllString(readme, "") // marks for the docs test, not for readers
	idx := docHeading.FindAllStringSubmatchIndex(text, -1)
	topics := make([]DocTopic, len(idx))
	for i, m := range idx {
		end := len(text)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		title := text[m[2]:m[3]]
		topics[i] = DocTopic{Name: toKebab(title), Title: title, Text: strings.TrimRight(text[m[0]:end], "\n") + "\n"}
	}
	return topics
}

// Docs is the rule language reference: all of it for topic "", else the
// section named topic, or the one section whose name starts with topic
// ("func" for "functions"). An unknown or ambiguous topic is an error that
// lists the topics.
func Docs(topic string) (string, error) {
	if topic == "" {
		return docComment.ReplaceAllString(readme, ""), nil
	}
	topics := DocTopics()
	var found []DocTopic
	for _, t := range topics {
		if t.Name == topic {
			return t.Text, nil
		}
		if strings.HasPrefix(t.Name, topic) {
			found = append(found, t)
		}
	}
	if len(found) == 1 {
		return found[0].Text, nil
	}
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Name
	}
	if len(found) > 1 {
		return "", fmt.Errorf("topic %q is ambiguous: it starts %d topics; topics: %s", topic, len(found), strings.Join(names, ", "))
	}
	return "", fmt.Errorf("no topic %q in the rule language reference; topics: %s", topic, strings.Join(names, ", "))
}
