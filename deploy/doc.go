// Package deploy holds the tests of Chronicler's deployment material: the
// Dockerfile (parsed with BuildKit's own parser, and its build command run
// exactly as written) and the Helm chart in helm/chronicler (linted,
// rendered, and every manifest decoded strictly into its Kubernetes type,
// with Helm's and Kubernetes' own Go packages; no cluster).
//
// It is a module of its own (deploy/go.mod) so that BuildKit's, Helm's and
// Kubernetes' dependency trees stay out of the chronicler binary's module
// graph. ./test/run.sh runs its tests with the rest.
//
// The tests share no state and run no servers; the only slow one is the
// Dockerfile build check (it compiles the binary). To refresh the chart's
// golden render after an intended change:
//
//	go test -run TestChartGolden -update
package deploy
