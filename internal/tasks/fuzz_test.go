package tasks

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzDecodeRequest is the API's body path: the strict decoder, then the
// catalogue. A body is refused with a DecodeError (bad JSON, unknown field)
// or a ValidationError naming fields, never anything else; what is
// accepted is within every bound and its payload validates to itself.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"type":"demo:echo","payload":{"arg":"a","sleep":"1s"},"queue":"high","process_in":"1s","timeout":"30s","max_retry":2}`,
		`{"type":"demo:fail"}`,
		`{"type":"demo:echo","payload":{"arg":"a"},"color":"red"}`,
		`{"type":"demo:echo"} {"type":"demo:echo"}`,
		`{"type":"demo:echo","max_retry":-1}`,
		`[{"type":"demo:echo"}]`,
		`{"type":`,
		"",
	} {
		f.Add([]byte(s))
	}
	c := NewCatalogue()
	f.Fuzz(func(t *testing.T, body []byte) {
		var req Request
		if err := DecodeStrict(bytes.NewReader(body), &req); err != nil {
			var derr *DecodeError
			if !errors.As(err, &derr) || derr.Message == "" {
				t.Fatalf("decode error %v (%T) is not a DecodeError with a message", err, err)
			}
			return
		}
		if !json.Valid(bytes.TrimSpace(body)) {
			t.Fatalf("decoder accepted invalid JSON %q", body)
		}
		p, err := c.Prepare(req)
		if err != nil {
			var verr *ValidationError
			if !errors.As(err, &verr) || len(verr.Fields) == 0 {
				t.Fatalf("error %v is not a ValidationError naming a field", err)
			}
			return
		}
		checkPrepared(t, c, p)
	})
}

// FuzzEchoPayload and FuzzFailPayload fuzz each task type's payload alone:
// accepted payloads are canonical JSON within the type's bounds, and what
// the app accepts the worker accepts too (its handler parses the same).
func FuzzEchoPayload(f *testing.F) {
	for _, s := range []string{`{"arg":"a","sleep":"1s"}`, `{"arg":""}`, `{}`, `null`, `{"sleep":"10m0s"}`, `{"sleep":"1e3s"}`, `{"arg":"\u00e9","sleep":"-0s"}`} {
		f.Add([]byte(s))
	}
	fuzzPayload(f, TypeEcho, func(t *testing.T, canonical []byte) {
		var e EchoPayload
		if err := json.Unmarshal(canonical, &e); err != nil || e.Validate() != nil {
			t.Fatalf("canonical echo payload %s does not validate: %v", canonical, err)
		}
		if utf8.RuneCountInString(e.Arg) > EchoMaxArg || e.sleep < 0 || e.sleep > EchoMaxSleep {
			t.Fatalf("echo payload out of bounds accepted: %s", canonical)
		}
	})
}

func FuzzFailPayload(f *testing.F) {
	for _, s := range []string{`{"message":"boom"}`, `{}`, `null`, `{"message":5}`, `{"message":""}`} {
		f.Add([]byte(s))
	}
	fuzzPayload(f, TypeFail, func(t *testing.T, canonical []byte) {
		var p FailPayload
		if err := json.Unmarshal(canonical, &p); err != nil || p.Message == "" || len(p.Message) > EchoMaxArg {
			t.Fatalf("fail payload out of bounds accepted: %s (%v)", canonical, err)
		}
	})
}

func fuzzPayload(f *testing.F, typ string, check func(t *testing.T, canonical []byte)) {
	c := NewCatalogue()
	spec, ok := c.Lookup(typ)
	if !ok {
		f.Fatalf("no task type %s", typ)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !utf8.Valid(raw) {
			return // the API refuses it before the type sees it (FuzzDecodeRequest)
		}
		canonical, err := spec.canonical(raw)
		if err != nil {
			var verr *ValidationError
			if !errors.As(err, &verr) || len(verr.Fields) == 0 {
				t.Fatalf("error %v is not a ValidationError", err)
			}
			for _, fe := range verr.Fields {
				if fe.Field != "payload" && !strings.HasPrefix(fe.Field, "payload.") {
					t.Fatalf("payload error names field %q", fe.Field)
				}
			}
			return
		}
		if !json.Valid(canonical) {
			t.Fatalf("canonical payload %q is not JSON", canonical)
		}
		again, err := spec.canonical(canonical)
		if err != nil || !bytes.Equal(again, canonical) {
			t.Fatalf("canonical payload %s is not a fixed point: %s, %v", canonical, again, err)
		}
		check(t, canonical)
	})
}

// checkPrepared holds for anything Prepare accepts.
func checkPrepared(t *testing.T, c *Catalogue, p Prepared) {
	t.Helper()
	if _, ok := c.Lookup(p.Type); !ok {
		t.Fatalf("accepted unknown type %q", p.Type)
	}
	if !KnownQueue(p.Queue) || p.ProcessIn < 0 || p.ProcessIn > MaxProcessIn || p.Timeout < time.Second || p.Timeout > MaxTimeout || p.MaxRetry < 0 || p.MaxRetry > MaxMaxRetry {
		t.Fatalf("accepted out-of-bounds options %+v", p)
	}
	again, err := c.Prepare(Request{Type: p.Type, Payload: p.Payload})
	if err != nil || !bytes.Equal(again.Payload, p.Payload) {
		t.Fatalf("canonical payload %s does not validate to itself: %s, %v", p.Payload, again.Payload, err)
	}
}
