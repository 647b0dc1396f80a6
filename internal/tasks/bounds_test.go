package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

// TestPayloadBoundsAreInclusive: every payload bound accepts its limit and
// refuses one past it, so that a < turned into <= (or back) fails here.
func TestPayloadBoundsAreInclusive(t *testing.T) {
	t.Parallel()
	c := NewCatalogue()
	str := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	tests := []struct {
		name      string
		req       Request
		wantField string // "" when accepted
	}{
		{"echo arg at the limit (runes, not bytes)", Request{Type: TypeEcho, Payload: json.RawMessage(`{"arg":` + str(strings.Repeat("é", EchoMaxArg)) + `}`)}, ""},
		{"echo arg past the limit", Request{Type: TypeEcho, Payload: json.RawMessage(`{"arg":` + str(strings.Repeat("x", EchoMaxArg+1)) + `}`)}, "payload.arg"},
		{"fail message at the limit", Request{Type: TypeFail, Payload: json.RawMessage(`{"message":` + str(strings.Repeat("x", EchoMaxArg)) + `}`)}, ""},
		{"fail message past the limit", Request{Type: TypeFail, Payload: json.RawMessage(`{"message":` + str(strings.Repeat("x", EchoMaxArg+1)) + `}`)}, "payload.message"},
		{"flaky failures at the limit", Request{Type: TypeFlaky, Payload: json.RawMessage(`{"failures":25}`)}, ""},
		{"flaky failures past the limit", Request{Type: TypeFlaky, Payload: json.RawMessage(`{"failures":26}`)}, "payload.failures"},
	}
	if MaxMaxRetry != 25 {
		t.Fatalf("MaxMaxRetry is %d: update the flaky cases", MaxMaxRetry)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.Prepare(tt.req)
			if tt.wantField == "" {
				if err != nil {
					t.Errorf("refused: %v", err)
				}
				return
			}
			var verr *ValidationError
			if !errors.As(err, &verr) || len(verr.Fields) != 1 || verr.Fields[0].Field != tt.wantField {
				t.Errorf("got %v, want a refusal naming %s", err, tt.wantField)
			}
		})
	}

	// The webhook body is checked before the allowlist is: its bound is
	// the payload's own.
	body := json.RawMessage(str(strings.Repeat("x", WebhookMaxBody-2)))
	if err := (&WebhookPayload{URL: "https://hooks.example/x", Body: body}).Validate(); err != nil {
		t.Errorf("a body of exactly %d bytes: %v", WebhookMaxBody, err)
	}
	body = json.RawMessage(str(strings.Repeat("x", WebhookMaxBody-1)))
	if err := (&WebhookPayload{URL: "https://hooks.example/x", Body: body}).Validate(); err == nil {
		t.Errorf("a body of %d bytes was accepted", WebhookMaxBody+1)
	}
}

// TestCanaryDefaults: the canary's own timeout and retries, which the
// prober relies on (a canary that cannot time out would never be missed).
func TestCanaryDefaults(t *testing.T) {
	t.Parallel()
	p, err := NewCatalogue().Prepare(Request{Type: TypeCanary, Internal: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Timeout != 30*time.Second || p.MaxRetry != 0 || p.Queue != QueueHigh {
		t.Errorf("canary timeout %s, max retry %d, queue %s; want 30s, 0, high", p.Timeout, p.MaxRetry, p.Queue)
	}
}

// TestFlakyNamesItsAttempt: the error of a failing attempt counts from 1,
// as the task page's timeline does.
func TestFlakyNamesItsAttempt(t *testing.T) {
	t.Parallel()
	err := handleFlaky(context.Background(), FlakyPayload{Failures: 2}, Job{Retried: 1})
	if err == nil || !strings.Contains(err.Error(), "attempt 2 of the 2 that fail on purpose") {
		t.Errorf("second attempt: %v", err)
	}
}

// TestHandlerWithoutResultWriter: a task run outside a server (no result
// writer) still runs, its result discarded.
func TestHandlerWithoutResultWriter(t *testing.T) {
	t.Parallel()
	if err := Echo.Handler()(context.Background(), asynq.NewTask(TypeEcho, []byte(`{"arg":"a","sleep":"0s"}`))); err != nil {
		t.Errorf("echo without a result writer: %v", err)
	}
}

// TestResultCapDefault: a zero cap means the default, not "nothing fits".
func TestResultCapDefault(t *testing.T) {
	t.Parallel()
	for in, want := range map[Limits]Limits{
		{}: {MaxPayloadBytes: DefaultMaxPayloadBytes, MaxResultBytes: DefaultMaxResultBytes},
		{MaxPayloadBytes: -1, MaxResultBytes: -1}: {MaxPayloadBytes: DefaultMaxPayloadBytes, MaxResultBytes: DefaultMaxResultBytes},
		{MaxPayloadBytes: 1, MaxResultBytes: 1}:   {MaxPayloadBytes: 1, MaxResultBytes: 1},
	} {
		if got := in.withDefaults(); got != want {
			t.Errorf("%+v.withDefaults() = %+v, want %+v", in, got, want)
		}
	}
}

// TestPatientWriterBacksOff: the retries of a failing result write pause
// 50 ms, then twice as long each time, not spin: four writes in 400 ms.
func TestPatientWriterBacksOff(t *testing.T) {
	t.Parallel()
	f := &flakyWriter{fail: 1 << 30}
	w := &patientWriter{ctx: context.Background(), w: f, window: 400 * time.Millisecond}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("a write that always fails must fail")
	}
	// A slow machine can only make the pauses longer, so fewer calls.
	if f.calls < 1 || f.calls > 4 {
		t.Errorf("%d writes in the window, want at most 4 (pauses of 50, 100, 200 ms)", f.calls)
	}
}

// TestRetryDelay: a RetryAfter error sets the delay (capped at
// MaxRetryAfter); a zero or negative one, or any other error, gets asynq's
// back-off, which is 15 s at least.
func TestRetryDelay(t *testing.T) {
	t.Parallel()
	c, task := NewCatalogue(), asynq.NewTask(TypeEcho, nil)
	boom := errors.New("boom")
	if d := c.RetryDelay(1, RetryAfter(3*time.Second, boom), task); d != 3*time.Second {
		t.Errorf("RetryAfter(3s): %s", d)
	}
	if d := c.RetryDelay(1, RetryAfter(48*time.Hour, boom), task); d != MaxRetryAfter {
		t.Errorf("RetryAfter(48h): %s, want the cap %s", d, MaxRetryAfter)
	}
	for _, err := range []error{RetryAfter(0, boom), RetryAfter(-time.Second, boom), boom} {
		if d := c.RetryDelay(1, err, task); d < 15*time.Second {
			t.Errorf("%v: %s, want asynq's back-off", err, d)
		}
	}
}

// TestJSONPath: the Go names of embedded structs (upper case, A to Z
// included) leave a decode error's field path; JSON names stay.
func TestJSONPath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Request.max_retry": "max_retry",
		"A.Z.x":             "x",
		"payload.arg":       "payload.arg",
		"@a.[b._c":          "@a.[b._c",
		"":                  "",
	} {
		if got := jsonPath(in); got != want {
			t.Errorf("jsonPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestResultCapIsInclusive: a result of exactly the cap is stored; one
// byte more fails the task for good.
func TestResultCapIsInclusive(t *testing.T) {
	t.Parallel()
	var got strings.Builder
	w := &cappedWriter{w: &got, left: 5}
	if n, err := w.Write([]byte("12345")); err != nil || n != 5 || got.String() != "12345" {
		t.Errorf("a result of exactly the cap: %d, %v", n, err)
	}
	if _, err := w.Write([]byte("6")); !errors.Is(err, ErrResultTooLarge) {
		t.Errorf("one byte past the cap: %v, want ErrResultTooLarge", err)
	}
}
