// Package shipped holds one test: every rule file and every rule snippet the
// repository ships is loaded by the product's own checker, and every rule
// test it ships passes. It closes the class of bug where an example in a
// README, a Helm values file or an example directory no longer loads (a user
// who copies it gets a crash-looping pod).
//
// What is found, by walking the whole repository (hidden directories and
// Helm templates aside):
//
//   - rule files: *.yaml and *.yml whose top level is capture: and/or
//     promote:, loaded a directory at a time with mapping.Load (as
//     `chronicler rules check DIR` does), and the *_test.yaml beside them run
//     with ruletest (as `chronicler rules test DIR` does);
//   - Helm values files: any YAML holding rules.files (the chart's
//     values.yaml and ci/*.yaml, a parent chart's chronicler.rules.files):
//     the files of one values file are written to a directory, as the chart
//     mounts them, and loaded together;
//   - Markdown: every ```yaml block whose top level is capture:/promote:
//     (rules), tests: (a rule test, run against the rule blocks before it in
//     the same section, i.e. since the last heading) or that holds
//     rules.files (values); a block right after the comment
//     <!-- rules: refused --> must fail to load (an example of an error);
//   - Go package documentation (doc.go): tab-indented comment blocks that
//     start with capture:, promote: or tests:.
//
// Snippets are extracted from the files themselves, never copied, and a
// problem is reported at its line in the file that ships it.
// mapping/testdata/broken is skipped: its fixtures are broken on purpose and
// mapping's own tests assert their problems (this test checks that it still
// holds rule files and that each still fails to load).
package shipped
