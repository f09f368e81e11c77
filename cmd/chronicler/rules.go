package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

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
	rules.AddCommand(&cobra.Command{
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
	})
	rules.AddCommand(&cobra.Command{
		Use:   "check FILES|DIRS...",
		Short: "Load and compile rule files; print every problem (exit 1 if any)",
		Long: "Load and compile rule files (directories are searched recursively for *.yaml and *.yml,\n" +
			"*_test.yaml excepted) and print every problem as file:line:col. Column names are not checked\n" +
			"against a database here (no catalogue: `chronicler check` does that).",
		Example: "  chronicler rules check deploy/examples/rules/shop\n" +
			"  chronicler rules check rules/orders.yaml rules/customers.yaml",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rs, err := mapping.Load(args, mapping.Options{})
			if err != nil {
				return printProblems(cmd, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %s, %s, %s\n", mapping.Count(len(rs.Files()), "file"),
				mapping.Count(len(rs.CaptureRules()), "capture rule"), mapping.Count(len(rs.PromotionRules()), "promotion rule"))
			return nil
		},
	})
	rules.AddCommand(&cobra.Command{
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
	})
	return rules
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
