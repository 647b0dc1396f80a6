package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
)

// MaxPage bounds the page number of a list.
const MaxPage = 100

type listQuery struct {
	States   []string
	Queues   []string
	Page     int
	PageSize int
	// Search: any of these makes the list a bounded search.
	Type         string
	Text         string
	Since, Until time.Time
	Cursor       string
}

// searching reports whether q filters on more than state and queue.
func (q listQuery) searching() bool { return q.searchQuery().Filtering() }

func (q listQuery) searchQuery() store.SearchQuery {
	return store.SearchQuery{States: q.States, Queues: q.Queues, Type: q.Type, Text: q.Text,
		Since: q.Since, Until: q.Until, Cursor: q.Cursor, Limit: q.PageSize, Hide: hidden}
}

// hidden are the task types lists leave out unless filtered by type.
var hidden = []string{tasks.TypeCanary}

// maxSearchText bounds the q parameter.
const maxSearchText = 200

func (q listQuery) storeQuery() store.Query {
	return store.Query{States: q.States, Queues: q.Queues, Page: q.Page, PageSize: q.PageSize, Hide: hidden}
}

func parseListQuery(v url.Values) (listQuery, error) {
	var verr tasks.ValidationError
	q := listQuery{States: store.States, Queues: tasks.Queues(), Page: 1, PageSize: store.DefaultPageSize}
	if s := v.Get("state"); s != "" {
		if !store.KnownState(s) {
			verr.Add("state", fmt.Sprintf("unknown state %q (use %s)", s, store.StateList()))
		}
		q.States = []string{s}
	}
	if s := v.Get("queue"); s != "" {
		if !tasks.KnownQueue(s) {
			verr.Add("queue", fmt.Sprintf("unknown queue %q (use %s)", s, strings.Join(tasks.Queues(), ", ")))
		}
		q.Queues = []string{s}
	}
	num := func(field string, def, max int) int {
		raw := v.Get(field)
		if raw == "" {
			return def
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > max {
			verr.Add(field, fmt.Sprintf("must be a whole number from 1 to %d", max))
			return def
		}
		return n
	}
	q.Page = num("page", 1, MaxPage)
	q.PageSize = num("page_size", store.DefaultPageSize, store.MaxPageSize)
	q.Type = strings.TrimSpace(v.Get("type"))
	q.Text = strings.TrimSpace(v.Get("q"))
	q.Cursor = v.Get("cursor")
	if len(q.Text) > maxSearchText {
		verr.Add("q", fmt.Sprintf("must be at most %d characters", maxSearchText))
	}
	stamp := func(field string) time.Time {
		raw := v.Get(field)
		if raw == "" {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339, raw)
		if err != nil {
			verr.Add(field, "must be a time like 2026-11-30T09:00:00Z (RFC 3339)")
		}
		return t
	}
	q.Since, q.Until = stamp("since"), stamp("until")
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		verr.Add("until", "must not be before since")
	}
	if q.Cursor != "" && !q.searching() {
		verr.Add("cursor", "goes with a search (type, q, since or until); page through lists with page")
	}
	return q, verr.Err()
}

// checkType refuses a type filter that is not in the catalogue.
func (s *Server) checkType(q listQuery) error {
	if q.Type == "" {
		return nil
	}
	if _, ok := s.cat.Lookup(q.Type); !ok {
		return &tasks.ValidationError{Fields: []tasks.FieldError{fieldError("type", fmt.Sprintf("unknown task type %q (known types: %s)", q.Type, strings.Join(s.cat.Types(), ", ")))}}
	}
	return nil
}

// searchPage is the answer to a search: its matches, how many tasks were
// read, whether the scan stopped at its bound, and the link to go on.
type searchPage struct {
	Tasks     []taskJSON `json:"tasks"`
	PageSize  int        `json:"page_size"`
	Scanned   int        `json:"scanned"`
	Truncated bool       `json:"truncated"`
	Cursor    string     `json:"cursor,omitempty"`
	Links     links      `json:"links"`
}

func (q listQuery) values() url.Values {
	v := url.Values{}
	if len(q.States) == 1 {
		v.Set("state", q.States[0])
	}
	if len(q.Queues) == 1 {
		v.Set("queue", q.Queues[0])
	}
	if q.Type != "" {
		v.Set("type", q.Type)
	}
	if q.Text != "" {
		v.Set("q", q.Text)
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339))
	}
	return v
}

// searchSnapshot runs (or reuses) a search.
func (s *Server) searchSnapshot(ctx context.Context, q listQuery) (*snapshot, error) {
	key := "search:" + listKey(q) + "|" + q.values().Encode() + "|" + q.Cursor
	return s.live.get(ctx, key, func(ctx context.Context) (any, error) {
		release, err := s.listSlot(ctx)
		if err != nil {
			return nil, err
		}
		defer release()
		res, err := s.store.Search(ctx, q.searchQuery())
		if err != nil {
			return nil, err
		}
		out := searchPage{Tasks: make([]taskJSON, 0, len(res.Tasks)), PageSize: q.PageSize, Scanned: res.Scanned, Truncated: res.Truncated, Cursor: res.Next}
		for _, t := range res.Tasks {
			out.Tasks = append(out.Tasks, toTaskJSON(t))
		}
		v := q.values()
		v.Set("page_size", strconv.Itoa(q.PageSize))
		if q.Cursor != "" {
			v.Set("cursor", q.Cursor)
		}
		out.Links.Self = "/api/v1/tasks?" + v.Encode()
		if res.Next != "" {
			v.Set("cursor", res.Next)
			out.Links.Next = "/api/v1/tasks?" + v.Encode()
		}
		return out, nil
	})
}

type taskPage struct {
	Tasks    []taskJSON `json:"tasks"`
	Page     int        `json:"page"`
	PageSize int        `json:"page_size"`
	Total    int        `json:"total"`
	Links    links      `json:"links"`
}

func toTaskPage(q listQuery, p store.Page) taskPage {
	out := taskPage{Tasks: make([]taskJSON, 0, len(p.Tasks)), Page: q.Page, PageSize: q.PageSize, Total: p.Total}
	for _, t := range p.Tasks {
		out.Tasks = append(out.Tasks, toTaskJSON(t))
	}
	return out
}

// hasNext reports whether a page follows q's.
func hasNext(q listQuery, total int) bool { return q.Page*q.PageSize < total && q.Page < MaxPage }

// listTasks answers a page of tasks from the list's snapshot, with links
// built from the query (so equal queries share one snapshot and one ETag).
func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) error {
	q, err := parseListQuery(r.URL.Query())
	if err == nil {
		err = s.checkType(q)
	}
	if err != nil {
		return err
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	if q.searching() {
		snap, err := s.searchSnapshot(ctx, q)
		if err != nil {
			return err
		}
		return writeSnapshot(w, r, snap)
	}
	snap, err := s.pageSnapshot(ctx, q)
	if err != nil {
		return err
	}
	return writeSnapshot(w, r, snap)
}

// pageSnapshot is the API's answer for q: the list view's page with links.
func (s *Server) pageSnapshot(ctx context.Context, q listQuery) (*snapshot, error) {
	return s.live.get(ctx, "api:"+listKey(q), func(ctx context.Context) (any, error) {
		view, err := s.listSnapshot(ctx, q)
		if err != nil {
			return nil, err
		}
		page := view.val.(listView).Page
		link := func(n int) string {
			v := q.values()
			v.Set("page", strconv.Itoa(n))
			v.Set("page_size", strconv.Itoa(q.PageSize))
			return "/api/v1/tasks?" + v.Encode()
		}
		page.Links.Self = link(q.Page)
		if hasNext(q, page.Total) {
			page.Links.Next = link(q.Page + 1)
		}
		if q.Page > 1 {
			page.Links.Prev = link(q.Page - 1)
		}
		return page, nil
	})
}

type finishedTask struct {
	ID          string     `json:"id"`
	Queue       string     `json:"queue"`
	Type        string     `json:"type"`
	Result      string     `json:"result"`
	CompletedAt *time.Time `json:"completed_at"`
}

// finishedTasks keeps the tutorial's endpoint: completed tasks and their
// results, newest first (the first MaxPageSize; page through
// /api/v1/tasks?state=completed for more).
func (s *Server) finishedTasks(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := s.requestContext(r)
	defer cancel()
	release, err := s.listSlot(ctx)
	if err != nil {
		return err
	}
	defer release()
	p, _, err := s.store.List(ctx, store.Query{States: []string{"completed"}, Page: 1, PageSize: store.MaxPageSize, Hide: hidden})
	if err != nil {
		return err
	}
	out := []finishedTask{}
	for _, t := range p.Tasks {
		out = append(out, finishedTask{ID: t.ID, Queue: t.Queue, Type: t.Type, Result: string(t.Result), CompletedAt: timePtr(t.CompletedAt)})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"finished_tasks": out, "total": p.Total})
}

// listStates are the states the page's filter offers.
var listStates = slices.Clone(store.States)
