package web

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
)

// The list page is what many people keep open, and html/template spent
// most of a request's CPU on it (~150 µs for an empty list, reflection for
// every action). So the page is rendered once per list snapshot into a
// frame with three holes, and each request fills in only what is its own
// (written by rows.go):
//
//   - the status line (the task the no-JavaScript form just submitted),
//   - the noscript Refresh link (the request's own address),
//   - the task rows, each written once per snapshot; only the submitted
//     task's row is written again, marked as the viewer's, and put on top
//     when the snapshot does not show it yet (recentTasks, or store.Find).
//
// A frame is as old as the snapshot it was rendered from (one interval at
// most, like the list it shows), and is kept per query (without submitted)
// and per signed-in user. Refused forms (422) and searches are rendered
// whole, as before.

// hole is where a request's own part goes in a frame, in page order.
type hole int

const (
	holeStatus hole = iota
	holeRefresh
	holeRows
	holes
)

// pageFrame is the list page rendered from one list snapshot (and one
// schedule snapshot), cut at its holes.
type pageFrame struct {
	list, sched *snapshot
	parts       [holes + 1][]byte
	tasks       []taskJSON
	rows        [][]byte // one per task, none of them the viewer's
	allRows     []byte   // rows joined, or the empty-list row
	plain       atomic.Pointer[plainPage]
}

// frameCache keeps the frames of the views being watched.
type frameCache struct {
	max int

	mu      sync.Mutex
	entries map[string]*frameEntry
}

type frameEntry struct {
	mu sync.Mutex // held while rendering: one render per snapshot
	f  *pageFrame
}

func newFrameCache(max int) *frameCache {
	return &frameCache{max: max, entries: map[string]*frameEntry{}}
}

// get returns key's frame if it was rendered from list and sched, or
// renders it with render. A full cache is emptied: it is refilled at the
// cost of one render per view.
func (c *frameCache) get(key string, list, sched *snapshot, render func() (*pageFrame, error)) (*pageFrame, error) {
	c.mu.Lock()
	e, ok := c.entries[key]
	if !ok {
		if len(c.entries) >= c.max {
			c.entries = map[string]*frameEntry{}
		}
		e = &frameEntry{}
		c.entries[key] = e
	}
	c.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.f != nil && e.f.list == list && e.f.sched == sched {
		return e.f, nil
	}
	f, err := render()
	if err != nil {
		return nil, err
	}
	e.f = f
	return f, nil
}

// newHoleMarks makes the marks a frame is rendered with: random, so that no
// task, user or schedule text can contain one.
func newHoleMarks() ([holes]string, error) {
	var m [holes]string
	for i := range m {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return m, fmt.Errorf("hole marks: %w", err)
		}
		m[i] = "<!--hole-" + hex.EncodeToString(b) + "-->"
	}
	return m, nil
}

// frame renders data's page with marks in its holes, and its rows.
func (p *pageRenderer) frame(data indexData, list, sched *snapshot) (*pageFrame, error) {
	data.Status, data.Refresh, data.Rows = template.HTML(p.marks[holeStatus]), template.HTML(p.marks[holeRefresh]), template.HTML(p.marks[holeRows])
	var buf bytes.Buffer
	if err := p.tmpl.ExecuteTemplate(&buf, "index.html", data); err != nil {
		return nil, fmt.Errorf("render index.html: %w", err)
	}
	f := &pageFrame{list: list, sched: sched, tasks: data.Page.Tasks}
	rest := buf.Bytes()
	for h := range holes {
		before, after, ok := bytes.Cut(rest, []byte(p.marks[h]))
		if !ok || bytes.Contains(after, []byte(p.marks[h])) {
			return nil, fmt.Errorf("render index.html: hole %d not found once", h)
		}
		f.parts[h], rest = before, after
	}
	f.parts[holes] = rest
	var all bytes.Buffer
	ends := make([]int, len(f.tasks))
	for i, t := range f.tasks {
		writeRow(&all, t, false)
		ends[i] = all.Len()
	}
	if len(f.tasks) == 0 {
		if err := p.tmpl.ExecuteTemplate(&all, "no-rows", data.Filtered); err != nil {
			return nil, fmt.Errorf("render no-rows: %w", err)
		}
	}
	f.allRows = all.Bytes()
	start := 0
	for _, end := range ends {
		f.rows = append(f.rows, f.allRows[start:end:end])
		start = end
	}
	return f, nil
}

// pageRequest is what one request adds to a frame.
type pageRequest struct {
	self string
	// submitted is the task the form just submitted ("" when none), and
	// found that task read from Redis when the frame's list lacks it.
	submitted string
	found     *taskJSON
	pageSize  int
}

// write answers status with f filled in for req.
func (p *pageRenderer) write(w http.ResponseWriter, status int, f *pageFrame, req pageRequest) error {
	var statusLine, refresh bytes.Buffer
	refresh.Grow(64 + len(req.self))
	writeRefresh(&refresh, req.self)
	rows := [][]byte{f.allRows}
	if req.submitted != "" {
		tasks, cached := f.tasks, f.rows
		if req.found != nil {
			tasks = append([]taskJSON{*req.found}, f.tasks...)[:min(len(f.tasks)+1, req.pageSize)]
			cached = append([][]byte{nil}, f.rows...)[:len(tasks)]
		}
		queue := ""
		if len(tasks) > 0 {
			rows = make([][]byte, len(tasks))
			for i, t := range tasks {
				if t.ID != req.submitted {
					rows[i] = cached[i]
					continue
				}
				var mine bytes.Buffer
				mine.Grow(1024)
				writeRow(&mine, t, true)
				rows[i], queue = mine.Bytes(), t.Queue
			}
		}
		statusLine.Grow(128 + 2*len(req.submitted))
		writeStatus(&statusLine, req.submitted, queue)
	}
	chunks := make([][]byte, 0, len(rows)+6)
	chunks = append(chunks, f.parts[holeStatus], statusLine.Bytes(), f.parts[holeRefresh], refresh.Bytes(), f.parts[holeRows])
	chunks = append(chunks, rows...)
	chunks = append(chunks, f.parts[holes])
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// One write: each goes through the middleware's wrappers, and one
	// large write leaves the connection's buffer in one system call.
	if req.submitted == "" {
		// The page as most requests see it is kept whole in its frame.
		pp := f.plain.Load()
		if pp == nil || pp.self != req.self {
			pp = &plainPage{self: req.self, body: bytes.Join(chunks, nil)}
			f.plain.Store(pp)
		}
		h.Set("Content-Length", strconv.Itoa(len(pp.body)))
		w.WriteHeader(status)
		_, err := w.Write(pp.body)
		return err
	}
	buf, _ := p.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer p.bufs.Put(buf)
	buf.Reset()
	for _, c := range chunks {
		buf.Write(c)
	}
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// plainPage is a frame filled for a request without a submitted task.
type plainPage struct {
	self string
	body []byte
}

// frameKey names the frame of a list page request: its query without
// submitted (the pager's links keep the rest), and who is signed in.
func frameKey(query url.Values, links navLinks) string {
	v := url.Values{}
	for k, vs := range query {
		if k != "submitted" {
			v[k] = vs
		}
	}
	return v.Encode() + "|" + links.User + "|" + strconv.FormatBool(links.Logout)
}

// recentTasks remembers, for a few seconds, the tasks the no-JavaScript form
// submitted through this replica, so that the redirect's page shows the new
// task without reading it back from Redis. A redirect that reaches another
// replica, or comes later, reads it (store.Find) as before.
type recentTasks struct {
	ttl time.Duration
	max int

	mu    sync.Mutex
	tasks map[string]recentTask
}

type recentTask struct {
	t  taskJSON
	at time.Time
}

func newRecentTasks(ttl time.Duration, max int) *recentTasks {
	return &recentTasks{ttl: ttl, max: max, tasks: map[string]recentTask{}}
}

func (c *recentTasks) add(t taskJSON) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.tasks) >= c.max {
		for id, r := range c.tasks {
			if now.Sub(r.at) > c.ttl {
				delete(c.tasks, id)
			}
		}
		if len(c.tasks) >= c.max {
			return
		}
	}
	c.tasks[t.ID] = recentTask{t: t, at: now}
}

// get returns the task submitted as id, once: the page that shows it
// first is the redirect's.
func (c *recentTasks) get(id string) (taskJSON, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.tasks[id]
	if !ok {
		return taskJSON{}, false
	}
	delete(c.tasks, id)
	return r.t, time.Since(r.at) <= c.ttl
}

// submittedJSON is what the page shows of a task just enqueued.
func submittedJSON(e store.Enqueued, p tasks.Prepared, at time.Time) taskJSON {
	at = at.UTC()
	t := taskJSON{
		ID: e.ID, Queue: e.Queue, Type: e.Type, State: e.State, Payload: p.Payload, MaxRetry: p.MaxRetry,
		EnqueuedAt: &at, Links: links{Self: taskPath(e.Queue, e.ID)},
	}
	if p.Timeout > 0 {
		t.Timeout = p.Timeout.String()
	}
	if p.ProcessIn > 0 {
		next := at.Add(p.ProcessIn)
		t.NextProcessAt = &next
	}
	return t
}
