package docs_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"taskstack/docs"
)

// TestOpenAPIDocument: docs/openapi.yaml is a valid OpenAPI 3.1 document,
// and the JSON the app serves says the same, key for key. (That the API
// answers as it says is internal/web's contract test.)
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	load := func(b []byte) *openapi3.T {
		t.Helper()
		l := openapi3.NewLoader()
		doc, err := l.LoadFromData(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := doc.Validate(l.Context); err != nil {
			t.Fatalf("docs/openapi.yaml is not a valid OpenAPI document: %v", err)
		}
		return doc
	}
	fromYAML := load(docs.OpenAPIYAML())
	if !fromYAML.IsOpenAPI31OrLater() {
		t.Errorf("openapi: %s, want 3.1", fromYAML.OpenAPI)
	}
	js, err := docs.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(js) || !bytes.HasPrefix(js, []byte(`{"openapi":"3.1.0",`)) {
		t.Fatalf("not JSON in the YAML's order: %.80s", js)
	}
	a, _ := json.Marshal(fromYAML)
	b, _ := json.Marshal(load(js))
	if !bytes.Equal(a, b) {
		t.Errorf("the JSON differs from the YAML:\nYAML %s\nJSON %s", a, b)
	}
}
