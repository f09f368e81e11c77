// Package deploy holds the tests of Chronicler's deployment material: the
// Dockerfile (parsed with BuildKit's own parser, and its build command run
// exactly as written) and, with the deploy issue, the Helm chart.
//
// It is a module of its own (deploy/go.mod) so that BuildKit's, Helm's and
// Kubernetes' dependency trees stay out of the chronicler binary's module
// graph. ./test/run.sh runs its tests with the rest.
package deploy
