package preflight

import (
	"context"
	"errors"
	"fmt"
)

// registry checks the schema registry of kafka.schema_registry (when its
// url is set): that it answers (its subjects and global compatibility
// level), and for every subject of the rules' schemas what it holds there
// and its level, without writing anything (registry.Client.Check).
func (c *checker) registry(ctx context.Context, rf *ruleFacts) {
	cl, err := c.cfg.Registry()
	if cl == nil && err == nil {
		return // no registry configured
	}
	name := "schema registry " + c.cfg.Kafka.SchemaRegistry.URL
	fix := "check kafka.schema_registry (url, username and password or token, tls) and that the registry runs"
	if err != nil {
		c.add(name, Fail, err.Error(), fix)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	info, err := cl.Describe(ctx)
	if err != nil {
		c.add(name, Fail, "unreachable: "+err.Error(), fix)
		return
	}
	c.add(name, OK, fmt.Sprintf("%d subjects, global compatibility %s", len(info.Subjects), info.Level), "")
	switch {
	case rf.set == nil:
		c.add("schema registry subjects", Warn, "not checked: the rules do not load", "fix the rules (see the rules lines)")
		return
	case len(rf.set.Schemas()) == 0:
		c.add("schema registry subjects", Warn, "no promotion rule declares a schema: nothing is registered and every value is plain JSON",
			"declare the values' contracts with schema: in the promotion rules (mapping/doc.go, Schemas), or unset kafka.schema_registry.url")
		return
	}
	statuses, err := cl.Check(ctx, rf.set)
	for _, st := range statuses {
		found, status, fixIt := "rule "+st.Rules+": "+st.Found(), OK, st.Fix()
		switch {
		case !st.OK():
			status = Fail
		case c.cfg.Kafka.SchemaRegistry.LookupOnly && !st.Registered:
			status, found = Fail, "rule "+st.Rules+": not registered, and kafka.schema_registry.lookup_only is set: the publisher would not start"
			fixIt = "register the schema (e.g. from CI), or unset lookup_only"
		}
		c.add("schema registry subject "+st.Subject, status, found, fixIt)
	}
	if err != nil {
		var errs interface{ Unwrap() []error }
		list := []error{err}
		if errors.As(err, &errs) {
			list = errs.Unwrap()
		}
		for _, e := range list {
			c.add("schema registry rules", Fail, e.Error(), "see the message")
		}
	}
}
