// Package e2e builds the real binaries and runs them as processes against a
// real redis-server started by the tests: the API, the HTML form, graceful
// shutdown, dev mode, traces across processes and the metrics endpoints.
package e2e
