// Package testsupport starts real processes for tests: redis-server on a
// free loopback port in a temporary directory, taskstack's own binaries
// (built once per test binary), and small helpers to poll them, hold ports
// and capture logs. Everything it starts is stopped in t.Cleanup, by PID.
// Tests never use a mock or embedded Redis.
//
// A missing binary is a test failure, not a skip: `make test` installs what
// the suite needs, so a skip would only hide a broken CI machine.
package testsupport
