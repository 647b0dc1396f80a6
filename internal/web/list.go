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
}

func (q listQuery) storeQuery() store.Query {
	return store.Query{States: q.States, Queues: q.Queues, Page: q.Page, PageSize: q.PageSize}
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
	return q, verr.Err()
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
	if err != nil {
		return err
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
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
			v := url.Values{}
			if len(q.States) == 1 {
				v.Set("state", q.States[0])
			}
			if len(q.Queues) == 1 {
				v.Set("queue", q.Queues[0])
			}
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
	p, _, err := s.store.List(ctx, store.Query{States: []string{"completed"}, Page: 1, PageSize: store.MaxPageSize})
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
