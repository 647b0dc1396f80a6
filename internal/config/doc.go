// Package config reads each binary's configuration from the environment.
//
// Every variable is read through an injected getenv and recorded, so the set
// of variables a binary understands (Vars) comes from the same code that
// parses them: the README table, compose and Kubernetes drift tests use it
// instead of a second hand-typed list. A malformed value is an error naming
// the variable, never a silent fallback to the default.
package config
