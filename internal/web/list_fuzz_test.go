package web

import (
	"errors"
	"net/url"
	"slices"
	"testing"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
)

// FuzzParseListQuery: any query string is refused with field errors or
// becomes a listing within bounds: known states and queues, a page and a
// page size in range (so one call reads at most MaxPage × MaxPageSize).
func FuzzParseListQuery(f *testing.F) {
	for _, s := range []string{"", "state=completed&queue=high&page=2&page_size=50", "page=0", "page=101", "page_size=1000",
		"state=done", "queue=urgent", "page=1e2", "page=+3", "state=&queue=", "state=active&state=pending", "page=%zz", "page_size=-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, _ := url.ParseQuery(raw) // what it could parse; net/http does the same
		q, err := parseListQuery(v)
		if err != nil {
			var verr *tasks.ValidationError
			if !errors.As(err, &verr) || len(verr.Fields) == 0 {
				t.Fatalf("%q: error %v is not a ValidationError", raw, err)
			}
			for _, fe := range verr.Fields {
				if !slices.Contains([]string{"state", "queue", "page", "page_size"}, fe.Field) {
					t.Fatalf("%q: error names field %q", raw, fe.Field)
				}
			}
			return
		}
		if len(q.States) == 0 || len(q.Queues) == 0 {
			t.Fatalf("%q: empty selection %+v", raw, q)
		}
		for _, s := range q.States {
			if !store.KnownState(s) {
				t.Fatalf("%q: unknown state %q accepted", raw, s)
			}
		}
		for _, qu := range q.Queues {
			if !tasks.KnownQueue(qu) {
				t.Fatalf("%q: unknown queue %q accepted", raw, qu)
			}
		}
		if q.Page < 1 || q.Page > MaxPage || q.PageSize < 1 || q.PageSize > store.MaxPageSize {
			t.Fatalf("%q: page %d size %d out of range", raw, q.Page, q.PageSize)
		}
	})
}
