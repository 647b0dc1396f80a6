// Package testsupport starts real servers for tests: redis-server (and, for
// the deploy checks, prometheus) on free loopback ports in a temporary
// directory, stopped in t.Cleanup. Tests never use a mock or embedded Redis.
//
// A missing binary is a test failure, not a skip: `make test` installs what
// the suite needs, so a skip would only hide a broken CI machine.
package testsupport
