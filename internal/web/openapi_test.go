package web_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"taskstack/docs"
	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/web"
)

// TestOpenAPIServed: GET /api/v1/openapi.json is docs/openapi.yaml as JSON,
// open without a credential where everything else needs one, with an ETag.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	f := setupAuth(t, nil)
	res := f.do(t, http.MethodGet, "/api/v1/openapi.json", nil)
	want, err := docs.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	if res.status != http.StatusOK || res.header.Get("Content-Type") != "application/json" || string(res.body) != string(want)+"\n" {
		t.Fatalf("GET /api/v1/openapi.json without a credential: %d %q %.100s", res.status, res.header.Get("Content-Type"), res.body)
	}
	etag := res.header.Get("ETag")
	if again := f.do(t, http.MethodGet, "/api/v1/openapi.json", nil, "If-None-Match", etag); etag == "" || again.status != http.StatusNotModified {
		t.Errorf("If-None-Match %q: %d, want 304", etag, again.status)
	}
}

// routesOf builds the app (no Redis is reached) and lists its routes.
func routesOf(t *testing.T) []string {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rc.Close() })
	app, _ := newApp(t, rc, web.Options{})
	return app.Routes()
}

// TestOpenAPIDescribesEveryRoute: the document describes every API route
// the app registers (routes.go), and no route the app does not have.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	var routes []string
	for _, p := range routesOf(t) {
		method, path, _ := strings.Cut(p, " ")
		if inScope(path) {
			routes = append(routes, method+" "+path)
		}
	}
	var documented []string
	for path, item := range newContract(t).doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(routes)
	slices.Sort(documented)
	if len(routes) < 10 {
		t.Fatalf("only %d API routes found: %v", len(routes), routes)
	}
	if diff := cmp.Diff(routes, documented); diff != "" {
		t.Errorf("API routes in routes.go (-) and in docs/openapi.yaml (+) differ:\n%s", diff)
	}
}

// TestOpenAPIBoundsMatchTheCode: the enums and bounds the document states
// are the code's.
func TestOpenAPIBoundsMatchTheCode(t *testing.T) {
	t.Parallel()
	doc := newContract(t).doc
	schema := func(name string) *openapi3.Schema { return doc.Components.Schemas[name].Value }
	param := func(name string) *openapi3.Schema { return doc.Components.Parameters[name].Value.Schema.Value }
	prop := func(s *openapi3.Schema, name string) *openapi3.Schema { return s.Properties[name].Value }
	strs := func(vs []any) []string {
		var out []string
		for _, v := range vs {
			out = append(out, v.(string))
		}
		return out
	}
	createTask := doc.Paths.Value("/api/v1/tasks").Post
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"TaskType", strs(schema("TaskType").Enum), tasks.NewCatalogue().Submittable()},
		{"QueueName", strs(schema("QueueName").Enum), tasks.Queues()},
		{"TaskState", strs(schema("TaskState").Enum), store.States},
		{"page maximum", *param("page").Max, float64(web.MaxPage)},
		{"page_size maximum", *param("page_size").Max, float64(store.MaxPageSize)},
		{"page_size default", param("page_size").Default, float64(store.DefaultPageSize)},
		{"max_retry maximum", *prop(schema("TaskFields"), "max_retry").Max, float64(tasks.MaxMaxRetry)},
		{"EchoPayload arg", *prop(schema("EchoPayload"), "arg").MaxLength, uint64(tasks.EchoMaxArg)},
		{"batch maxItems", *prop(schema("BatchRequest"), "tasks").MaxItems, uint64(web.MaxBatchItems)},
		{"Idempotency-Key", *createTask.Parameters.GetByInAndName("header", "Idempotency-Key").Schema.Value.MaxLength, uint64(store.MaxIdempotencyKey)},
		{"idempotency_key", *prop(schema("BatchItem"), "idempotency_key").MaxLength, uint64(store.MaxIdempotencyKey)},
	} {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("docs/openapi.yaml's %s differs from the code's (-code +document):\n%s", c.what, diff)
		}
	}
	// Every type a list can be searched for, canary:ping included.
	for _, typ := range tasks.NewCatalogue().Types() {
		if err := param("type").VisitJSON(typ, openapi3.EnableJSONSchema2020()); err != nil {
			t.Errorf("the type parameter refuses %s: %s", typ, brief(err))
		}
	}
}
