package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
)

func intp(n int) *int { return &n }

func TestPrepareRejectsWithFieldNames(t *testing.T) {
	t.Parallel()
	c := NewCatalogue()
	tests := []struct {
		name   string
		req    Request
		fields []string
	}{
		{"missing type", Request{}, []string{"type"}},
		{"unknown type", Request{Type: "demo:nope"}, []string{"type"}},
		{"bad sleep", Request{Type: TypeEcho, Payload: json.RawMessage(`{"arg":"a","sleep":"soon"}`)}, []string{"payload.sleep"}},
		{"sleep too long", Request{Type: TypeEcho, Payload: json.RawMessage(`{"arg":"a","sleep":"11m"}`)}, []string{"payload.sleep"}},
		{"negative sleep", Request{Type: TypeEcho, Payload: json.RawMessage(`{"arg":"a","sleep":"-1s"}`)}, []string{"payload.sleep"}},
		{"arg not a string", Request{Type: TypeEcho, Payload: json.RawMessage(`{"arg":5}`)}, []string{"payload.arg"}},
		{"arg too long", Request{Type: TypeEcho, Payload: json.RawMessage(`{"arg":"` + strings.Repeat("é", EchoMaxArg+1) + `"}`)}, []string{"payload.arg"}},
		{"unknown payload field", Request{Type: TypeEcho, Payload: json.RawMessage(`{"arg":"a","color":"red"}`)}, []string{"payload.color"}},
		{"payload not an object", Request{Type: TypeEcho, Payload: json.RawMessage(`[1]`)}, []string{"payload"}},
		{"payload invalid UTF-8", Request{Type: TypeEcho, Payload: json.RawMessage("{\"arg\":\"\xff\"}")}, []string{"payload"}},
		{"fail message too long", Request{Type: TypeFail, Payload: json.RawMessage(`{"message":"` + strings.Repeat("x", EchoMaxArg+1) + `"}`)}, []string{"payload.message"}},
		{"unknown queue", Request{Type: TypeEcho, Queue: "urgent"}, []string{"queue"}},
		{"bad durations", Request{Type: TypeEcho, ProcessIn: "later", Timeout: "soon"}, []string{"process_in", "timeout"}},
		{"options out of range", Request{Type: TypeEcho, ProcessIn: "-1s", Timeout: "2h", MaxRetry: intp(99)}, []string{"process_in", "timeout", "max_retry"}},
		{"timeout under a second", Request{Type: TypeEcho, Timeout: "500ms"}, []string{"timeout"}},
		{"negative max_retry", Request{Type: TypeEcho, MaxRetry: intp(-1)}, []string{"max_retry"}},
		{"internal type", Request{Type: TypeCanary, Payload: json.RawMessage(`{}`)}, []string{"type"}},
		{"flaky failures out of range", Request{Type: TypeFlaky, Payload: json.RawMessage(`{"failures":-1}`)}, []string{"payload.failures"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.Prepare(tt.req)
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("want *ValidationError, got %v", err)
			}
			var got []string
			for _, f := range verr.Fields {
				got = append(got, f.Field)
				if f.Message == "" {
					t.Errorf("field %s has no message", f.Field)
				}
			}
			if diff := cmp.Diff(tt.fields, got); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrepareDefaultsAndOptions(t *testing.T) {
	t.Parallel()
	c := NewCatalogue()
	tests := []struct {
		name string
		req  Request
		want Prepared
	}{
		{"echo defaults", Request{Type: TypeEcho, Payload: json.RawMessage(`{"arg":"x"}`)},
			Prepared{Type: TypeEcho, Payload: []byte(`{"arg":"x","sleep":"1m0s"}`), Queue: QueueDefault, Timeout: EchoMaxSleep + time.Minute, MaxRetry: 3}},
		{"no payload", Request{Type: TypeEcho},
			Prepared{Type: TypeEcho, Payload: []byte(`{"arg":"","sleep":"1m0s"}`), Queue: QueueDefault, Timeout: EchoMaxSleep + time.Minute, MaxRetry: 3}},
		{"null payload", Request{Type: TypeEcho, Payload: json.RawMessage(`null`)},
			Prepared{Type: TypeEcho, Payload: []byte(`{"arg":"","sleep":"1m0s"}`), Queue: QueueDefault, Timeout: EchoMaxSleep + time.Minute, MaxRetry: 3}},
		{"explicit options", Request{Type: TypeEcho, Payload: json.RawMessage(`{"arg":"x","sleep":"0s"}`), Queue: QueueHigh, MaxRetry: intp(0), Timeout: "30s", ProcessIn: "1m", ID: "fixed"},
			Prepared{Type: TypeEcho, Payload: []byte(`{"arg":"x","sleep":"0s"}`), Queue: QueueHigh, Timeout: 30 * time.Second, MaxRetry: 0, ProcessIn: time.Minute, ID: "fixed"}},
		{"zero timeout keeps the default", Request{Type: TypeFail, Timeout: "0s"},
			Prepared{Type: TypeFail, Payload: []byte(`{"message":"demo failure"}`), Queue: QueueLow, Timeout: time.Minute, MaxRetry: 0}},
		{"bounds are inclusive", Request{Type: TypeFail, ProcessIn: "168h", Timeout: "1h", MaxRetry: intp(MaxMaxRetry)},
			Prepared{Type: TypeFail, Payload: []byte(`{"message":"demo failure"}`), Queue: QueueLow, Timeout: time.Hour, MaxRetry: MaxMaxRetry, ProcessIn: MaxProcessIn}},
		{"sleep bounds are inclusive", Request{Type: TypeEcho, Payload: json.RawMessage(`{"sleep":"10m"}`), Timeout: "1s"},
			Prepared{Type: TypeEcho, Payload: []byte(`{"arg":"","sleep":"10m0s"}`), Queue: QueueDefault, Timeout: time.Second, MaxRetry: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := c.Prepare(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrepareLabelsRejectedRequests(t *testing.T) {
	t.Parallel()
	p, err := NewCatalogue().Prepare(Request{Type: TypeEcho, Payload: json.RawMessage(`{"sleep":"x"}`)})
	if err == nil || p.Type != TypeEcho || p.Queue != QueueDefault || p.Payload != nil {
		t.Errorf("a rejected request keeps its type and default queue for metrics, and no payload: %+v, %v", p, err)
	}
}

func TestDecodeStrict(t *testing.T) {
	t.Parallel()
	type body struct {
		A string `json:"a"`
		N *int   `json:"n"`
	}
	tests := []struct {
		in      string
		field   string
		message string
	}{
		{``, "", "is empty; send a JSON object"},
		{`  `, "", "is empty; send a JSON object"},
		{`null`, "", "must be a JSON object"},
		{`[1]`, "", "must be a JSON object"},
		{`"a"`, "", "must be a JSON object"},
		{`{"a":`, "", "is not valid JSON"},
		{`nul`, "", "is not valid JSON"},
		{`{"a":"x"} {}`, "", "must hold a single JSON object"},
		{`{"a":"x"}x`, "", "must hold a single JSON object"},
		// Found by FuzzDecodeRequest: a stray closing bracket passed.
		{`{"a":"x"}}`, "", "must hold a single JSON object"},
		{`{"a":"x"}]`, "", "must hold a single JSON object"},
		{`{"b":1}`, "b", "is not a known field"},
		{`{"a":1}`, "a", "must be a string"},
		{`{"n":"1"}`, "n", "must be a number"},
	}
	for _, tt := range tests {
		var v body
		err := DecodeStrict(strings.NewReader(tt.in), &v)
		var derr *DecodeError
		if !errors.As(err, &derr) {
			t.Errorf("DecodeStrict(%q) = %v, want a *DecodeError", tt.in, err)
			continue
		}
		if derr.Field != tt.field || derr.Message != tt.message {
			t.Errorf("DecodeStrict(%q) = {%q, %q}, want {%q, %q}", tt.in, derr.Field, derr.Message, tt.field, tt.message)
		}
	}
	var v body
	if err := DecodeStrict(strings.NewReader(` {"a":"x","n":2} `+"\n"), &v); err != nil || v.A != "x" || *v.N != 2 {
		t.Errorf("a good body: %+v, %v", v, err)
	}
}

func TestEchoHandler(t *testing.T) {
	t.Parallel()
	var got strings.Builder
	p := EchoPayload{Arg: "world", Sleep: "0s"}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := handleEcho(context.Background(), p, Job{Result: &got}); err != nil {
		t.Fatal(err)
	}
	if got.String() != "prefix___world" {
		t.Errorf("result %q, want the tutorial's prefix___world", got.String())
	}

	// A cancelled echo returns an error, so asynq does not mark it completed.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	long := EchoPayload{Arg: "x", Sleep: "10m"}
	_ = long.Validate()
	done := make(chan error, 1)
	go func() { done <- handleEcho(ctx, long, Job{Result: &got}) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a cancelled echo must fail")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("echo did not stop when its context was cancelled")
	}
}

func TestHandlerRefusesInvalidPayloadWithoutRetry(t *testing.T) {
	t.Parallel()
	err := Echo.Handler()(context.Background(), asynq.NewTask(TypeEcho, []byte(`{"arg":"a","sleep":"forever"}`)))
	if !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), "payload.sleep") {
		t.Errorf("err = %v, want SkipRetry naming payload.sleep", err)
	}
	if err := Fail.Handler()(context.Background(), asynq.NewTask(TypeFail, []byte(`{"message":"boom"}`))); err == nil || !strings.Contains(err.Error(), "boom") || errors.Is(err, asynq.SkipRetry) {
		t.Errorf("demo:fail = %v, want a retryable error carrying its message", err)
	}
}

func TestCatalogueRefusesBadDefinitions(t *testing.T) {
	t.Parallel()
	for name, specs := range map[string][]Spec{
		"duplicate":     {Echo, Echo},
		"unknown queue": {Define("x:y", Defaults{Queue: "urgent"}, handleFail)},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: NewCatalogueOf did not panic", name)
				}
			}()
			NewCatalogueOf(specs...)
		}()
	}
	if got := NewCatalogue().Types(); !cmp.Equal(got, []string{TypeCanary, TypeEcho, TypeFail, TypeFlaky, TypeWebhook}) {
		t.Errorf("types %v", got)
	}
}

func FuzzPrepare(f *testing.F) {
	f.Add("demo:echo", []byte(`{"arg":"a","sleep":"1s"}`), "high", "1s", "30s")
	f.Add("demo:echo", []byte(`{"arg":5}`), "", "", "")
	f.Add("demo:fail", []byte(`nul`), "low", "-1s", "2h")
	f.Add("demo:echo", []byte("{\"arg\":\"\xff\"}"), "default", "", "")
	c := NewCatalogue()
	f.Fuzz(func(t *testing.T, typ string, payload []byte, queue, processIn, timeout string) {
		p, err := c.Prepare(Request{Type: typ, Payload: payload, Queue: queue, ProcessIn: processIn, Timeout: timeout})
		if err != nil {
			var verr *ValidationError
			if !errors.As(err, &verr) || len(verr.Fields) == 0 {
				t.Fatalf("error %v is not a ValidationError naming a field", err)
			}
			return
		}
		if !KnownQueue(p.Queue) || p.ProcessIn < 0 || p.ProcessIn > MaxProcessIn || p.Timeout < time.Second || p.Timeout > MaxTimeout {
			t.Fatalf("accepted out-of-bounds options %+v", p)
		}
		// What was accepted validates again, unchanged: the worker sees the same.
		again, err := c.Prepare(Request{Type: p.Type, Payload: p.Payload})
		if err != nil || string(again.Payload) != string(p.Payload) {
			t.Fatalf("canonical payload %s does not validate to itself: %s, %v", p.Payload, again.Payload, err)
		}
		if typ == TypeEcho {
			var e EchoPayload
			if err := json.Unmarshal(p.Payload, &e); err != nil || e.Validate() != nil || e.sleep < 0 || e.sleep > EchoMaxSleep {
				t.Fatalf("accepted echo payload out of bounds: %s", p.Payload)
			}
		}
	})
}

func TestHumanDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{10 * time.Minute: "10m", 168 * time.Hour: "168h", 90 * time.Second: "1m30s", 0: "0s", time.Hour + time.Second: "1h0m1s"} {
		if got := HumanDuration(d); got != want {
			t.Errorf("HumanDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
