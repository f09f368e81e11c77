package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/ruletest"
)

func newRulesCmd() *cobra.Command {
	rules := &cobra.Command{
		Use:   "rules",
		Short: "Check and test rule files",
		Long: "Rule files map row changes to low-level events (capture:) and stored events to integration\n" +
			"events (promote:). `chronicler rules docs` prints the language reference.",
	}
	rules.AddCommand(newRulesDocsCmd(), newRulesCheckCmd(), newRulesSchemaCmd(), newRulesTestCmd())
	return rules
}

// newRulesDocsCmd is `rules docs`.
func newRulesDocsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "docs [TOPIC]",
		Short: "Print the rule language reference, or one topic of it",
		Long: "Print the rule language reference (Markdown; the same text as mapping/README.md in the\n" +
			"repository): rule files, capture and promotion rules, templates, expressions, every function,\n" +
			"the rule-test format, with examples. A topic is a section's name or a unique start of it.\n\n" +
			"Topics: " + docTopicNames(),
		Example: "  chronicler rules docs\n" +
			"  chronicler rules docs functions\n" +
			"  chronicler rules docs rule-tests",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := ""
			if len(args) == 1 {
				topic = args[0]
			}
			text, err := mapping.Docs(topic)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return exitError(2)
			}
			fmt.Fprint(cmd.OutOrStdout(), text)
			return nil
		},
	}
}

// newRulesCheckCmd is `rules check`.
func newRulesCheckCmd() *cobra.Command {
	var registryURL string
	check := &cobra.Command{
		Use:   "check FILES|DIRS... [--registry URL]",
		Short: "Load and compile rule files; print every problem (exit 1 if any)",
		Long: "Load and compile rule files (directories are searched recursively for *.yaml and *.yml,\n" +
			"*_test.yaml excepted) and print every problem as file:line:col, the promotion rules' values\n" +
			"checked against their schemas. Column names are not checked against a database here (no\n" +
			"catalogue: `chronicler check` does that).\n\n" +
			"With --registry URL, every promotion rule's schema is also compared with what the schema\n" +
			"registry holds under its subject, and nothing is written there: registered, new, compatible\n" +
			"(a start registers the next version) or incompatible (FAIL, with the fields that differ): a CI\n" +
			"step before deploying. The registry's other settings come from the variables run reads:\n" +
			"CHRONICLER_KAFKA_SCHEMA_REGISTRY_SUBJECT_STRATEGY, _USERNAME, _PASSWORD or _PASSWORD_FILE,\n" +
			"_TOKEN or _TOKEN_FILE, _TLS_CA_FILE, ... Exit 1 on a rule problem, an incompatible schema or an\n" +
			"unreachable registry; 2 for invalid registry settings.",
		Example: "  chronicler rules check deploy/examples/rules/shop\n" +
			"  chronicler rules check rules/orders.yaml rules/customers.yaml\n" +
			"  CHRONICLER_KAFKA_SCHEMA_REGISTRY_PASSWORD_FILE=ci/sr-pw chronicler rules check rules/ --registry https://registry:8081",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rs, err := mapping.Load(args, mapping.Options{})
			if err != nil {
				return printProblems(cmd, err)
			}
			schemas := ""
			if n := len(rs.Schemas()); n > 0 {
				schemas = fmt.Sprintf(" (%d with a schema)", n)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %s, %s, %s%s\n", mapping.Count(len(rs.Files()), "file"),
				mapping.Count(len(rs.CaptureRules()), "capture rule"), mapping.Count(len(rs.PromotionRules()), "promotion rule"), schemas)
			if registryURL == "" {
				return nil
			}
			return checkRegistry(cmd, registryURL, rs)
		},
	}
	check.Flags().StringVar(&registryURL, "registry", "", "a schema registry's URL: compare the rules' schemas with what it holds (writes nothing)")
	return check
}

// newRulesSchemaCmd is `rules schema`.
func newRulesSchemaCmd() *cobra.Command {
	var schemaRule string
	schema := &cobra.Command{
		Use:   "schema FILES|DIRS... --rule NAME",
		Short: "Print a draft JSON Schema for a promotion rule's values, to check, complete and pin",
		Long: "Derive a JSON Schema (draft-07) from a promotion rule's value: a mapping is a closed object with\n" +
			"every field required, a list an array typed by its first item, a constant or an expression its\n" +
			"known type; event.data.<field> is typed through the capture rules of the files that produce the\n" +
			"rule's events (null added when some of them does not write it). Column types are not known here\n" +
			"(no database): what stays unknown is left open with a description naming the expression. Save\n" +
			"the output beside the rules and name it in the rule (schema: FILE.json).",
		Example: "  chronicler rules schema deploy/examples/rules/shop --rule order-placed > deploy/examples/rules/shop/order-placed.json",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rs, err := mapping.Load(args, mapping.Options{})
			if err != nil {
				return printProblems(cmd, err)
			}
			b, ok := rs.DeriveSchemaJSON(schemaRule)
			if !ok {
				fmt.Fprintf(cmd.ErrOrStderr(), "rules schema --rule %q: no such promotion rule; the files have %v\n", schemaRule, rs.PromotionRules())
				return exitError(2)
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	schema.Flags().StringVar(&schemaRule, "rule", "", "the promotion rule (required)")
	return schema
}

// newRulesTestCmd is `rules test`.
func newRulesTestCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "test FILES|DIRS...",
		Short: "Run the rule tests (*_test.yaml) next to the rules; exit 1 on any failure",
		Long: "Each *_test.yaml holds cases: an input change (or stored events) and the events (or integration\n" +
			"events) the rules must produce. A failing case prints a diff of expected and actual.",
		Example: "  chronicler rules test deploy/examples/rules/shop",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := ruletest.Run(args, mapping.Options{}, cmd.OutOrStdout())
			if err != nil {
				return printProblems(cmd, err)
			}
			if rep.Failed > 0 || rep.Passed == 0 {
				if rep.Passed == 0 && rep.Failed == 0 {
					fmt.Fprintln(cmd.ErrOrStderr(), "no test cases found")
				}
				return exitError(1)
			}
			return nil
		},
	}
}

func docTopicNames() string {
	var names []string
	for _, t := range mapping.DocTopics() {
		names = append(names, t.Name)
	}
	return strings.Join(names, ", ")
}

// printProblems prints a load error one problem per line and asks for exit 1.
func printProblems(cmd *cobra.Command, err error) error {
	var le *mapping.LoadError
	if !errors.As(err, &le) {
		return err
	}
	for _, p := range le.Problems {
		fmt.Fprintln(cmd.ErrOrStderr(), p.String())
	}
	fmt.Fprintln(cmd.ErrOrStderr(), mapping.Count(len(le.Problems), "problem"))
	return exitError(1)
}

// checkRegistry is `rules check --registry`: every subject of the rules'
// schemas compared with what the registry holds, one line each.
func checkRegistry(cmd *cobra.Command, url string, rs *mapping.RuleSet) error {
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	cl, err := config.RegistryFromEnv(url, config.LookupFunc(os.LookupEnv))
	if err != nil {
		fmt.Fprintln(errOut, "rules check --registry:", err)
		return exitError(2)
	}
	if len(rs.Schemas()) == 0 {
		fmt.Fprintln(out, "registry: no promotion rule declares a schema: nothing to compare")
		return nil
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
	defer cancel()
	statuses, err := cl.Check(ctx, rs)
	failed := 0
	for _, st := range statuses {
		mark := "ok  "
		if !st.OK() {
			mark = "FAIL"
			failed++
		}
		fmt.Fprintf(out, "%s subject %s (rule %s): %s\n", mark, st.Subject, st.Rules, st.Found())
		if fix := st.Fix(); fix != "" {
			fmt.Fprintf(out, "     fix: %s\n", fix)
		}
	}
	if err != nil { // the rule set's own problems with a registry
		for _, e := range unjoin(err) {
			fmt.Fprintf(out, "FAIL %v\n", e)
			failed++
		}
	}
	fmt.Fprintf(out, "registry %s: %s, %d failed\n", cl.URL(), mapping.Count(len(statuses), "subject"), failed)
	if failed > 0 {
		return exitError(1)
	}
	return nil
}

// unjoin splits an errors.Join result into its errors.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
