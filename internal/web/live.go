package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"taskstack/internal/store"
)

// snapshots caches the reads behind the page's live views and the API's
// list, queue and task answers, one entry per distinct view: however many
// viewers and pollers there are, each view costs Redis at most one read per
// interval per app replica, and a list or the queue statistics are at most
// one interval old. A task's own snapshot is dropped when this replica
// writes it, so a client reads its own task at once.
type snapshots struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	entries map[string]*snapEntry
}

type snapEntry struct {
	mu   sync.Mutex // held while reading: one read of Redis per entry at a time
	at   time.Time
	snap *snapshot
	err  error
	used time.Time
}

// snapshot is one read: the value, its JSON and an ETag of the JSON.
type snapshot struct {
	val  any
	body []byte
	etag string
}

func newSnapshots(ttl time.Duration, max int) *snapshots {
	return &snapshots{ttl: ttl, max: max, entries: map[string]*snapEntry{}}
}

// get returns key's snapshot, reading it with load when it is older than
// the interval. Errors are kept for the interval too, so a struggling Redis
// is not asked once per viewer.
func (c *snapshots) get(ctx context.Context, key string, load func(context.Context) (any, error)) (*snapshot, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.entries[key]
	if !ok {
		if len(c.entries) >= c.max {
			c.evict(now)
		}
		e = &snapEntry{}
		if len(c.entries) < c.max {
			c.entries[key] = e
		}
	}
	e.used = now
	c.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.at.IsZero() && time.Since(e.at) < c.ttl {
		return e.snap, e.err
	}
	val, err := load(ctx)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, err // the viewer left; nothing to keep
		}
		e.snap, e.err, e.at = nil, err, time.Now()
		return nil, err
	}
	body, err := json.Marshal(val)
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	sum := sha256.Sum256(body)
	e.snap = &snapshot{val: val, body: body, etag: `W/"` + hex.EncodeToString(sum[:10]) + `"`}
	e.err, e.at = nil, time.Now()
	return e.snap, nil
}

// evict forgets the entries nobody asked for in a while (the lock is held).
func (c *snapshots) evict(now time.Time) {
	for k, e := range c.entries {
		if now.Sub(e.used) > time.Minute {
			delete(c.entries, k)
		}
	}
}

// drop forgets key's entry.
func (c *snapshots) drop(key string) {
	c.mu.Lock()
	delete(c.entries, key)
	c.mu.Unlock()
}

// Keys of the snapshots.
func listKey(q listQuery) string {
	return "list:" + strings.Join(q.States, ",") + "|" + strings.Join(q.Queues, ",") + "|" + strconv.Itoa(q.Page) + "|" + strconv.Itoa(q.PageSize)
}
func taskKey(queue, id string) string { return "task:" + queue + "/" + id }

const queuesKey = "queues"

// listView is a page of tasks with every queue's statistics: what the page
// shows, read in one call.
type listView struct {
	Page   taskPage    `json:"page"`
	Queues []queueJSON `json:"queues"`
}

// listSnapshot reads (or reuses) the list view of q.
func (s *Server) listSnapshot(ctx context.Context, q listQuery) (*snapshot, error) {
	return s.live.get(ctx, listKey(q), func(ctx context.Context) (any, error) {
		release, err := s.listSlot(ctx)
		if err != nil {
			return nil, err
		}
		defer release()
		p, qs, err := s.store.List(ctx, q.storeQuery())
		if err != nil {
			return nil, err
		}
		return listView{Page: toTaskPage(q, p), Queues: toQueuesJSON(qs)}, nil
	})
}

func (s *Server) queuesSnapshot(ctx context.Context) (*snapshot, error) {
	return s.live.get(ctx, queuesKey, func(ctx context.Context) (any, error) {
		qs, err := s.store.Queues(ctx)
		if err != nil {
			return nil, err
		}
		return map[string]any{"queues": toQueuesJSON(qs)}, nil
	})
}

func (s *Server) taskSnapshot(ctx context.Context, queue, id string) (*snapshot, error) {
	return s.live.get(ctx, taskKey(queue, id), func(ctx context.Context) (any, error) {
		t, err := s.store.Task(ctx, queue, id)
		if err != nil {
			return nil, err
		}
		return toTaskDetail(t, s.links), nil
	})
}

// changed drops the snapshot of a task this replica just wrote. Lists are
// not dropped: a burst of submissions would otherwise make every viewer
// read Redis again; they catch up within one interval.
func (s *Server) changed(queue, id string) {
	s.live.drop(taskKey(queue, id))
}

// writeSnapshot answers with a snapshot's JSON and ETag, or 304 when the
// client has it already.
func writeSnapshot(w http.ResponseWriter, r *http.Request, snap *snapshot) error {
	w.Header().Set("ETag", snap.etag)
	w.Header().Set("Cache-Control", "no-cache")
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, snap.etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(append(snap.body, '\n'))
	return err
}

func etagMatches(header, etag string) bool {
	for t := range strings.SplitSeq(header, ",") {
		if t = strings.TrimSpace(t); t == etag || t == "*" || "W/"+t == etag {
			return true
		}
	}
	return false
}

// Server-sent events: GET /api/v1/events streams a view's snapshot each
// time it changes. The browser's EventSource reconnects by itself.
const (
	maxEventStreams = 1000
	heartbeatEvery  = 15 * time.Second
)

func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	read, err := s.eventsView(r.URL.Query())
	if err != nil {
		return err
	}
	select {
	case s.streams <- struct{}{}:
		defer func() { <-s.streams }()
	default:
		p := newProblem(http.StatusServiceUnavailable, "too many live views are open; the page falls back to polling")
		p.retryAfter = 5
		return p
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	st := &eventStream{w: w, rc: http.NewResponseController(w)}
	if !st.send("retry: %d\n\n", s.o.LiveInterval.Milliseconds()*3) {
		return nil
	}
	ctx := r.Context()
	tick := time.NewTicker(s.o.LiveInterval)
	defer tick.Stop()
	for {
		snap, err := read(ctx)
		if !st.push(ctx, snap, err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// eventsView is the snapshot read of the view a stream asks for: a list
// (its filter as the list's) or one task.
func (s *Server) eventsView(v url.Values) (func(context.Context) (*snapshot, error), error) {
	switch v.Get("view") {
	case "", "list":
		q, err := parseListQuery(v)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) (*snapshot, error) { return s.listSnapshot(ctx, q) }, nil
	case "task":
		queue, id := v.Get("queue"), v.Get("id")
		if _, _, err := pathTaskOf(queue, id); err != nil {
			return nil, err
		}
		return func(ctx context.Context) (*snapshot, error) { return s.taskSnapshot(ctx, queue, id) }, nil
	}
	return nil, newProblem(http.StatusUnprocessableEntity, "unknown view", fieldError("view", "must be list or task"))
}

// eventStream writes one viewer's server-sent events.
type eventStream struct {
	w         http.ResponseWriter
	rc        *http.ResponseController
	last      string    // the ETag of the last snapshot sent
	lastWrite time.Time // for the heartbeat
}

// send writes and flushes one event; false when the viewer is gone.
func (st *eventStream) send(format string, args ...any) bool {
	_ = st.rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(st.w, format, args...); err != nil {
		return false
	}
	if st.rc.Flush() != nil {
		return false
	}
	st.lastWrite = time.Now()
	return true
}

// push sends what a read gave: the snapshot when it changed, gone when the
// task is, unavailable while Redis fails (the stream stays: the next tick
// tries again, and the page shows it is not live meanwhile), or a
// heartbeat now and then. False ends the stream.
func (st *eventStream) push(ctx context.Context, snap *snapshot, err error) bool {
	switch {
	case errors.Is(err, store.ErrNotFound):
		st.send("event: gone\ndata: {}\n\n")
		return false
	case err != nil:
		return ctx.Err() == nil && st.send("event: unavailable\ndata: {}\n\n")
	case snap.etag != st.last:
		if !st.send("event: snapshot\nid: %s\ndata: %s\n\n", snap.etag, snap.body) {
			return false
		}
		st.last = snap.etag
	case time.Since(st.lastWrite) > heartbeatEvery:
		return st.send(": still here\n\n")
	}
	return true
}
