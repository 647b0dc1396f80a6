package web

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"

	"taskstack/docs"
)

// openAPISnapshot is docs/openapi.yaml as JSON, converted once, with its
// ETag.
func openAPISnapshot() (*snapshot, error) {
	body, err := docs.OpenAPIJSON()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	return &snapshot{body: body, etag: `W/"` + hex.EncodeToString(sum[:10]) + `"`}, nil
}

// openAPI is GET /api/v1/openapi.json: the API's contract.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) error {
	return writeSnapshot(w, r, s.openapi)
}
