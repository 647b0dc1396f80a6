package tasks

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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
		{"unknown payload field", Request{Type: TypeEcho, Payload: json.RawMessage(`{"arg":"a","color":"red"}`)}, []string{"payload.color"}},
		{"payload not an object", Request{Type: TypeEcho, Payload: json.RawMessage(`[1]`)}, []string{"payload"}},
		{"unknown queue", Request{Type: TypeEcho, Queue: "urgent"}, []string{"queue"}},
		{"bad options", Request{Type: TypeEcho, ProcessIn: -time.Second, Timeout: 2 * time.Hour, MaxRetry: intp(99)}, []string{"process_in", "timeout", "max_retry"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.Prepare(tt.req, time.Hour)
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

func TestPrepareDefaults(t *testing.T) {
	t.Parallel()
	p, err := NewCatalogue().Prepare(Request{Type: TypeEcho, Payload: json.RawMessage(`{"arg":"x"}`)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if p.Queue != QueueDefault || p.MaxRetry != 3 || p.Timeout != EchoMaxSleep+time.Minute {
		t.Errorf("defaults not applied: %+v", p)
	}
	var payload EchoPayload
	if err := json.Unmarshal(p.Payload, &payload); err != nil {
		t.Fatal(err)
	}
	if payload.Sleep != "1m0s" {
		t.Errorf("default sleep = %q, want the tutorial's 60s", payload.Sleep)
	}
	p, err = NewCatalogue().Prepare(Request{Type: TypeEcho, Payload: json.RawMessage(`{"arg":"x","sleep":"0s"}`), Queue: QueueHigh, MaxRetry: intp(0)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if p.Queue != QueueHigh || p.MaxRetry != 0 {
		t.Errorf("explicit options not kept: %+v", p)
	}
}

func FuzzParseEcho(f *testing.F) {
	f.Add([]byte(`{"arg":"a","sleep":"1s"}`))
	f.Add([]byte(`{"arg":5}`))
	f.Add([]byte(`nul`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, d, err := ParseEcho(b)
		if err == nil && (d < 0 || d > EchoMaxSleep || len([]rune(p.Arg)) > EchoMaxArg) {
			t.Errorf("accepted out-of-bounds payload %q", b)
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
