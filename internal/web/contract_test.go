package web_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"taskstack/docs"
)

// serve runs h for a test, every API exchange checked against the OpenAPI
// document the app serves (docs/openapi.yaml): every test that talks to the
// API through serve also tests the document.
func serve(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(newContract(t).check(t, h))
	t.Cleanup(srv.Close)
	return srv
}

// contract is the OpenAPI document with its router.
type contract struct {
	doc    *openapi3.T
	router routers.Router
	// seen holds the snapshot events already validated: fifty viewers of
	// one view receive the same snapshots, and check them one at a time.
	mu   sync.Mutex
	seen map[[32]byte]bool
}

func newContract(t testing.TB) *contract {
	t.Helper()
	c, err := loadContract()
	if err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	return c
}

// loadContract reads the document once for all the tests (it takes a
// tenth of a second with -race).
var loadContract = sync.OnceValues(func() (*contract, error) {
	raw, err := docs.OpenAPIJSON()
	if err != nil {
		return nil, err
	}
	l := openapi3.NewLoader()
	doc, err := l.LoadFromData(raw)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(l.Context); err != nil {
		return nil, err
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	openapi3filter.RegisterBodyDecoder("text/event-stream", func(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(r)
		return string(b), err
	})
	return &contract{doc: doc, router: router, seen: map[[32]byte]bool{}}, nil
})

// inScope: the API's paths (and the tutorial's /finished_tasks, which the
// document also describes).
func inScope(path string) bool { return strings.HasPrefix(path, "/api/") || path == "/finished_tasks" }

// check validates each API request and its answer. A test fails when:
//   - the answer does not match the document (an undocumented status, a
//     body that breaks its schema, a missing required header);
//   - the document refuses a request that the app took (below 400, or a
//     batch whose items were all taken);
//   - a path or method the document does not describe got anything but a
//     404 or 405 problem.
func (c *contract) check(t testing.TB, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !inScope(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK // nothing written: net/http sends 200
		}
		if err := c.validate(r, body, rec); err != nil {
			t.Errorf("OpenAPI contract: %s %s answered %d: %s\nbody: %.300s", r.Method, r.URL.RequestURI(), rec.status, brief(err), rec.body.Bytes())
		}
	})
}

func (c *contract) validate(r *http.Request, body []byte, rec *recorder) error {
	ctx := context.Background()
	req := r.Clone(ctx)
	req.Body = io.NopCloser(bytes.NewReader(body))
	if len(body) > 0 && !strings.HasPrefix(req.Header.Get("Content-Type"), "application/json") {
		// The app reads every body as JSON, whatever its Content-Type (the
		// document says so).
		req.Header.Set("Content-Type", "application/json")
	}
	head := req.Method == http.MethodHead
	if head {
		req.Method = http.MethodGet // Go's mux answers HEAD wherever it answers GET
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		return c.undocumented(err, rec)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	reqErr := openapi3filter.ValidateRequest(ctx, in)
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 rec.status,
		Header:                 rec.Header(),
		Body:                   io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: head || rec.truncated},
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return fmt.Errorf("the answer breaks the document: %w", err)
	}
	if reqErr != nil && !refused(rec) {
		return fmt.Errorf("the document refuses this request, but the app accepted it: %w", reqErr)
	}
	if rec.status == http.StatusOK && route.Operation.OperationID == "events" {
		return c.events(req, rec.body.Bytes())
	}
	return nil
}

// undocumented checks the answer to a request the document does not
// describe: a 404 or 405 problem.
func (c *contract) undocumented(routeErr error, rec *recorder) error {
	want := http.StatusNotFound
	if errors.Is(routeErr, routers.ErrMethodNotAllowed) {
		want = http.StatusMethodNotAllowed
		if rec.Header().Get("Allow") == "" {
			return errors.New("405 without Allow")
		}
	}
	if rec.status != want {
		return fmt.Errorf("the document does not describe this request (%v), and the answer is not a %d", routeErr, want)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		return fmt.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	return c.matches("Problem", rec.body.Bytes())
}

// brief cuts kin-openapi's message before the schema it goes on to print.
func brief(err error) string {
	msg, _, _ := strings.Cut(err.Error(), "\nSchema:")
	return msg
}

// refused reports whether the app did not take the request: an error, or
// a batch answer with a refused item.
func refused(rec *recorder) bool {
	if rec.status >= 400 {
		return true
	}
	if rec.status != http.StatusMultiStatus {
		return false
	}
	var b struct {
		Results []struct {
			Status int `json:"status"`
		} `json:"results"`
	}
	_ = json.Unmarshal(rec.body.Bytes(), &b)
	for _, res := range b.Results {
		if res.Status >= 400 {
			return true
		}
	}
	return false
}

// events checks the data of each complete snapshot event of a stream: a
// ListView, or a Task for view=task.
func (c *contract) events(r *http.Request, stream []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	schema := "ListView"
	if r.URL.Query().Get("view") == "task" {
		schema = "TaskDetail"
	}
	complete := stream[:bytes.LastIndex(stream, []byte("\n\n"))+1]
	sc := bufio.NewScanner(bytes.NewReader(complete))
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			event = ""
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
			if event != "snapshot" && event != "gone" && event != "unavailable" {
				return fmt.Errorf("event %q is not documented", event)
			}
		case strings.HasPrefix(line, "data: ") && event == "snapshot":
			data := []byte(strings.TrimPrefix(line, "data: "))
			key := sha256.Sum256(append([]byte(schema+" "), data...))
			if c.seen[key] {
				continue
			}
			if err := c.matches(schema, data); err != nil {
				return fmt.Errorf("snapshot event: %w", err)
			}
			c.seen[key] = true
		}
	}
	return sc.Err()
}

// matches validates a JSON body against one of the document's schemas.
func (c *contract) matches(schema string, body []byte) error {
	ref := c.doc.Components.Schemas[schema]
	if ref == nil {
		return fmt.Errorf("the document has no schema %s", schema)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if err := ref.Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("not a %s: %w", schema, err)
	}
	return nil
}

// recorder passes an answer through and keeps a copy of it (the start of it
// past maxKept: an event stream goes on for as long as it is watched).
type recorder struct {
	http.ResponseWriter
	status    int
	body      bytes.Buffer
	truncated bool
}

const maxKept = 16 << 20

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.body.Len()+len(b) <= maxKept {
		r.body.Write(b)
	} else {
		r.truncated = true
	}
	return r.ResponseWriter.Write(b)
}

// Flush and Unwrap keep server-sent events flowing through the recorder.
func (r *recorder) Flush()                      { _ = http.NewResponseController(r.ResponseWriter).Flush() }
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
