package web

import (
	"bytes"
	"net/http"

	"taskstack/internal/tasks"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 1 << 20

// decodeJSON reads one JSON object from the body into v with the
// catalogue's strict decoder: at most MaxBodyBytes, unknown fields refused,
// trailing data refused.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	// The Content-Type is not checked: `curl -d` sends a form type with a
	// JSON body, and the body has to be valid JSON either way.
	return tasks.DecodeStrict(http.MaxBytesReader(w, r.Body, MaxBodyBytes), v)
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
