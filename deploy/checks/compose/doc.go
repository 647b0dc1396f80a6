// Package compose checks the docker compose deployment by code, since no
// Docker engine runs where the tests do: the compose file loads through the
// compose-spec loader with each env file, the Dockerfiles parse with
// BuildKit's parser, promtool checks and unit-tests the alert rules, a real
// Prometheus scrapes the real binaries and answers every dashboard and rule
// expression, and the environment compose gives each binary matches what
// internal/config reads.
//
// It lives in the deploy/checks module so that compose-go, BuildKit and their
// dependencies stay out of the binaries' go.mod.
package compose
