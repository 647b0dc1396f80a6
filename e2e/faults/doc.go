// Package faults is taskstack's fault suite: it builds the real app,
// worker and monitor binaries, runs them against real redis-server (single
// node with AOF, Sentinel, Cluster) started by the tests, breaks something
// under load (kill -9 of a worker, a rolling restart, a Redis restart or
// crash, a 2 s Redis blip, a Sentinel failover) and then checks every task
// the API acknowledged with a 2xx: it completed, with the right result, and
// its handler completed once (or, where the fault makes a rerun
// unavoidable, at least once). A lost acknowledged task fails the test.
//
// Each scenario is bounded in time and prints what it measured as lines
// starting with "FIGURE" (grep them: go test ./e2e/faults -v | grep FIGURE);
// docs/reliability.md has the figures. Nothing is asserted about speed.
//
// The scenarios that fit a few minutes run in `make test`. The long ones
// (the soak, the AOF everysec crash) are behind the build tag `chaos`:
// `make chaos`.
package faults
