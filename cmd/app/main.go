// Command app serves taskstack's web page and JSON API. It enqueues and
// inspects tasks; it never runs them.
//
// Configuration is the environment (see the README); the one argument
// it takes is `healthcheck`, which exits 0 when the running app answers.
package main

import "taskstack/internal/stack"

// Set by the build: -ldflags "-X main.version=... -X main.commit=...".
var version, commit = "dev", ""

func main() { stack.Main("app", stack.RunApp, version, commit) }
