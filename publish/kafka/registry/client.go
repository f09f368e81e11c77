package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/chronicler-dev/chronicler/mapping"
)

// Client is the publisher's client of one schema registry. It is safe for
// concurrent use.
type Client struct {
	cfg Config
	sr  *sr.Client

	mu  sync.Mutex
	ids map[subjectSchema]int // registered or looked up
}

type subjectSchema struct{ subject, text string }

// New validates cfg (every problem, under "kafka.schema_registry") and
// returns a client. Nothing is connected until a call.
func New(cfg Config) (*Client, error) {
	if errs := cfg.Validate("kafka.schema_registry"); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if strings.HasPrefix(cfg.URL, "https://") {
		tc, err := cfg.TLS.Build("kafka.schema_registry.tls")
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tc
	}
	opts := []sr.ClientOpt{
		sr.URLs(strings.TrimRight(cfg.URL, "/")),
		sr.HTTPClient(&http.Client{Transport: tr, Timeout: cfg.Timeout}),
		sr.UserAgent("chronicler"),
	}
	switch {
	case cfg.Token != "":
		opts = append(opts, sr.BearerToken(cfg.Token))
	case cfg.Username != "":
		opts = append(opts, sr.BasicAuth(cfg.Username, cfg.Password))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka.schema_registry: %w", err)
	}
	return &Client{cfg: cfg, sr: cl, ids: map[subjectSchema]int{}}, nil
}

// URL is the registry's URL, for messages.
func (c *Client) URL() string { return c.cfg.URL }

// Subject is the subject s is registered under.
func (c *Client) Subject(s *mapping.Schema) string {
	switch c.cfg.Strategy {
	case RecordName:
		return recordName(s)
	case TopicRecordName:
		return s.Topic + "-" + recordName(s)
	}
	return s.Topic + "-value"
}

func recordName(s *mapping.Schema) string {
	if s.Title != "" {
		return s.Title
	}
	return s.Type
}

// entry is one subject and the schema the rules register under it.
type entry struct {
	subject string
	schema  *mapping.Schema // the first rule's
	rules   []*mapping.Schema
}

func (e *entry) ruleNames() string {
	names := make([]string, len(e.rules))
	for i, r := range e.rules {
		names[i] = fmt.Sprintf("%q (%s)", r.Rule, where(r))
	}
	return strings.Join(names, ", ")
}

func where(s *mapping.Schema) string {
	if s.File != "" {
		return s.File
	}
	return s.Where
}

// plan groups rs's schemas by subject, in rule order. Rules sharing a
// subject must declare the same schema, and every rule writing a topic
// where some rule has a schema must have one (its values would be in
// another format on the same topic).
func (c *Client) plan(rs *mapping.RuleSet) ([]*entry, error) {
	var out []*entry
	bySubject := map[string]*entry{}
	var errs []error
	withSchema := map[string][]string{} // topic → rules with a schema
	for _, s := range rs.Schemas() {
		withSchema[s.Topic] = append(withSchema[s.Topic], s.Rule)
		subj := c.Subject(s)
		e := bySubject[subj]
		if e == nil {
			e = &entry{subject: subj, schema: s}
			bySubject[subj] = e
			out = append(out, e)
		}
		e.rules = append(e.rules, s)
	}
	for _, e := range out {
		for _, r := range e.rules[1:] {
			if r.Text != e.schema.Text {
				errs = append(errs, &ConflictError{Subject: e.subject, Rules: e.ruleNames(), Strategy: c.cfg.Strategy})
				break
			}
		}
	}
	without := map[string][]string{}
	for _, rule := range rs.PromotionRules() {
		if t := rs.TopicOf(rule); rs.Schema(rule) == nil && withSchema[t] != nil {
			without[t] = append(without[t], rule)
		}
	}
	topics := make([]string, 0, len(without))
	for t := range without {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		errs = append(errs, &MixedTopicError{Topic: t, WithSchema: withSchema[t], Without: without[t]})
	}
	return out, errors.Join(errs...)
}

// IDs maps a promotion rule to the registry's id of its schema: the id its
// values are framed with (AppendFrame). Rules without a schema are absent.
type IDs map[string]int

// Resolve makes sure every schema of rs is registered and returns the ids.
// A schema already registered under its subject is looked up. Otherwise,
// unless LookupOnly, it is registered when the registry finds it compatible
// with the subject's latest version under the subject's compatibility level
// (a new subject takes it as version 1); an incompatible one is an
// *IncompatibleError naming the rules, the subject and the fields that
// differ, and nothing is registered for it. With LookupOnly a schema not
// registered is a *NotRegisteredError. Every subject is tried; the errors
// are joined. Ids found are cached for the Client's life.
func (c *Client) Resolve(ctx context.Context, rs *mapping.RuleSet) (IDs, error) {
	plan, err := c.plan(rs)
	if err != nil {
		return nil, err
	}
	ids := IDs{}
	var errs []error
	for _, e := range plan {
		id, err := c.resolve(ctx, e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, r := range e.rules {
			ids[r.Rule] = id
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return ids, nil
}

func (c *Client) resolve(ctx context.Context, e *entry) (int, error) {
	k := subjectSchema{e.subject, e.schema.Text}
	c.mu.Lock()
	id, ok := c.ids[k]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	schema := sr.Schema{Type: sr.TypeJSON, Schema: e.schema.Text}
	ss, err := c.sr.LookupSchema(ctx, e.subject, schema)
	switch {
	case err == nil:
		return c.remember(k, ss.ID), nil
	case !notFound(err):
		return 0, c.failed(e, "looking up the schema", err)
	case c.cfg.LookupOnly:
		return 0, &NotRegisteredError{Rules: e.ruleNames(), Subject: e.subject, Registry: c.cfg.URL}
	}
	res, err := c.sr.CheckCompatibility(sr.WithParams(ctx, sr.Verbose), e.subject, -1, schema)
	switch {
	case err != nil && !notFound(err):
		return 0, c.failed(e, "checking compatibility", err)
	case err == nil && !res.Is:
		return 0, c.incompatible(ctx, e, res.Messages)
	}
	id, err = c.sr.RegisterSchema(ctx, e.subject, schema, -1, -1)
	var re *sr.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusConflict {
		// Another client registered an incompatible version meanwhile.
		return 0, c.incompatible(ctx, e, []string{re.Message})
	}
	if err != nil {
		return 0, c.failed(e, "registering the schema", err)
	}
	return c.remember(k, id), nil
}

func (c *Client) remember(k subjectSchema, id int) int {
	c.mu.Lock()
	c.ids[k] = id
	c.mu.Unlock()
	return id
}

// notFound: the subject, or the schema under it, is not registered.
func notFound(err error) bool {
	var re *sr.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

func (c *Client) failed(e *entry, doing string, err error) error {
	return &RequestError{Registry: c.cfg.URL, Doing: doing, Subject: e.subject, Rules: e.ruleNames(), Err: err}
}

// incompatible builds the error for a schema the registry refused: the
// subject's latest version, its level and the fields that differ.
func (c *Client) incompatible(ctx context.Context, e *entry, messages []string) error {
	ie := &IncompatibleError{Rules: e.ruleNames(), Subject: e.subject, Messages: messages, Level: c.level(ctx, e.subject)}
	latest, err := c.sr.SchemaByVersion(ctx, e.subject, -1)
	if err != nil {
		ie.Messages = append(ie.Messages, "reading the latest version: "+err.Error())
		return ie
	}
	ie.Version, ie.ID = latest.Version, latest.ID
	if old, err := decode(latest.Schema.Schema); err == nil {
		ie.Fields = Differences(old, e.schema.Doc)
	}
	return ie
}

// level is the subject's compatibility level, else the global one (a
// subject without a level of its own, or without a version yet); "unknown
// (<error>)" when it cannot be read.
func (c *Client) level(ctx context.Context, subject string) string {
	r := c.sr.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), subject)[0]
	if r.Err != nil && notFound(r.Err) {
		r = c.sr.Compatibility(ctx)[0]
	}
	if r.Err != nil {
		return "unknown (" + r.Err.Error() + ")"
	}
	return r.Level.String()
}

// Status is what the registry holds for one subject of a rule set,
// compared with the rules' schema (Check).
type Status struct {
	Subject string
	Rules   string // the rules registering under it, with where they declare the schema
	Level   string // the subject's compatibility level (else the global one)
	// Registered: the rules' schema is registered under the subject, as
	// Version with ID.
	Registered  bool
	Version, ID int
	// Latest is the subject's latest version; 0 when the subject has none.
	Latest int
	// Compatible: the schema may be registered (it is registered, the
	// subject is new, or the registry finds it compatible with Latest).
	Compatible bool
	Fields     []string // when not Compatible: the differences found
	Messages   []string // the registry's own messages, when it gives any
	// Err is set when the registry could not answer: nothing above is
	// known but Subject and Rules.
	Err error
}

// Check compares every schema of rs with what the registry holds, and
// writes nothing: for `chronicler rules check --registry` (a CI step before
// deploying) and `chronicler check`. The error is the rule set's own
// (subjects shared with different schemas, topics mixing rules with and
// without a schema); a registry that cannot be reached is each Status's Err.
func (c *Client) Check(ctx context.Context, rs *mapping.RuleSet) ([]Status, error) {
	plan, err := c.plan(rs)
	out := make([]Status, 0, len(plan))
	for _, e := range plan {
		out = append(out, c.check(ctx, e))
	}
	return out, err
}

func (c *Client) check(ctx context.Context, e *entry) Status {
	st := Status{Subject: e.subject, Rules: e.ruleNames()}
	schema := sr.Schema{Type: sr.TypeJSON, Schema: e.schema.Text}
	ss, err := c.sr.LookupSchema(ctx, e.subject, schema)
	if err == nil {
		st.Registered, st.Compatible, st.Version, st.ID = true, true, ss.Version, ss.ID
	} else if !notFound(err) {
		st.Err = c.failed(e, "looking up the schema", err)
		return st
	}
	latest, err := c.sr.SchemaByVersion(ctx, e.subject, -1)
	switch {
	case err == nil:
		st.Latest = latest.Version
	case notFound(err):
		st.Compatible = true // a new subject
	default:
		st.Err = c.failed(e, "reading the latest version", err)
		return st
	}
	st.Level = c.level(ctx, e.subject)
	if st.Registered || st.Latest == 0 {
		return st
	}
	res, err := c.sr.CheckCompatibility(sr.WithParams(ctx, sr.Verbose), e.subject, -1, schema)
	if err != nil {
		st.Err = c.failed(e, "checking compatibility", err)
		return st
	}
	st.Compatible, st.Messages = res.Is, res.Messages
	if !res.Is {
		if old, err := decode(latest.Schema.Schema); err == nil {
			st.Fields = Differences(old, e.schema.Doc)
		}
	}
	return st
}

// Info is what the registry says about itself.
type Info struct {
	Subjects []string // every subject, sorted
	Level    string   // the global compatibility level
}

// Describe lists the registry's subjects and its global compatibility
// level: a reachability check for `chronicler check`.
func (c *Client) Describe(ctx context.Context) (Info, error) {
	subjects, err := c.sr.Subjects(ctx)
	if err != nil {
		return Info{}, &RequestError{Registry: c.cfg.URL, Doing: "listing subjects", Err: err}
	}
	sort.Strings(subjects)
	info := Info{Subjects: subjects}
	r := c.sr.Compatibility(ctx)[0]
	if r.Err != nil {
		info.Level = "unknown (" + r.Err.Error() + ")"
	} else {
		info.Level = r.Level.String()
	}
	return info, nil
}
