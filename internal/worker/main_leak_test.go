package worker_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: a
// server, client or worker loop a test started and did not stop.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
