package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SearchQuery filters tasks beyond their state and queue. Each call reads
// at most MaxScan tasks, the newest of every queue and state it covers (an
// equal share each), and returns the matches newest first; a Cursor goes
// on where a previous call stopped, per queue and state, so nothing is
// skipped or repeated.
type SearchQuery struct {
	States []string // empty: every state
	Queues []string // empty: every queue
	Type   string   // a task type, exactly
	// Text is a substring (any case) of the last error or of the result.
	Text string
	// Since and Until bound the time of completion or of the last failure
	// (zero: unbounded); a task matches when either falls within.
	Since, Until time.Time
	Cursor       string
	Limit        int // matches per answer (DefaultPageSize when zero)
	// Hide leaves tasks of these types out unless Type asks for one.
	Hide []string
}

// Filtering reports whether q filters on more than state and queue.
func (q SearchQuery) Filtering() bool {
	return q.Type != "" || q.Text != "" || !q.Since.IsZero() || !q.Until.IsZero()
}

// SearchResult is one call's matches, how many tasks it read, whether
// tasks are left unread (Truncated: the bound stopped it), and the cursor
// that goes on ("" when every task was read).
type SearchResult struct {
	Tasks     []Task
	Scanned   int
	Truncated bool
	Next      string
}

// ErrBadCursor is a cursor this store did not hand out.
var ErrBadCursor = errors.New("not a cursor from a previous answer")

// Search returns the tasks that match q, reading at most MaxScan of them
// in one round trip.
func (s *Store) Search(ctx context.Context, q SearchQuery) (SearchResult, error) {
	lq := Query{States: q.States, Queues: q.Queues}.withDefaults(s.queues)
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultPageSize
	}
	type container struct{ queue, state string }
	var cs []container
	for _, queue := range lq.Queues {
		for _, state := range lq.States {
			cs = append(cs, container{queue, state})
		}
	}
	offs, err := parseCursor(q.Cursor, len(cs))
	if err != nil {
		return SearchResult{}, err
	}
	// Share the bound among the queues and states that have tasks left to
	// read (a first round trip counts them), so that empty ones cost none.
	stats, err := s.Queues(ctx)
	if err != nil {
		return SearchResult{}, err
	}
	left := make([]int, len(cs))
	for i, c := range cs {
		for _, st := range stats {
			if st.Queue == c.queue {
				left[i] = max(0, st.count(c.state)-offs[i])
			}
		}
	}
	share := fairShares(left, MaxScan)
	views, err := s.readWindows(ctx, len(cs), func(i int) (string, string, int, int) {
		return cs[i].queue, cs[i].state, offs[i], share[i]
	})
	if err != nil {
		return SearchResult{}, err
	}
	type match struct {
		t   Task
		ci  int
		pos int
	}
	var found []match
	var res SearchResult
	text := strings.ToLower(q.Text)
	for i, v := range views {
		st := cs[i].state
		res.Scanned += v.read[st]
		for k, t := range v.tasks[st] {
			if matches(t, q, text) {
				found = append(found, match{t, i, v.pos[st][k]})
			}
		}
	}
	slices.SortStableFunc(found, func(a, b match) int { return b.t.sortTime().Compare(a.t.sortTime()) })
	returned := found[:min(limit, len(found))]
	// Each queue and state goes on after what it gave: past its window when
	// all its matches were returned, at its first match left out otherwise.
	next := make([]int, len(cs))
	for i, v := range views {
		next[i] = offs[i] + v.read[cs[i].state]
	}
	for _, m := range found[len(returned):] {
		next[m.ci] = min(next[m.ci], offs[m.ci]+m.pos)
	}
	for _, m := range returned {
		res.Tasks = append(res.Tasks, m.t)
	}
	more := false
	for i, v := range views {
		if next[i] < v.stats.count(cs[i].state) {
			more = true
		}
	}
	if more {
		res.Next = encodeCursor(next)
		res.Truncated = len(found) <= limit // unread tasks remain: the bound, not the page, stopped it
	}
	return res, nil
}

// fairShares splits budget among demands as evenly as it can: no one gets
// more than it asks, and what one does not need goes to the others.
func fairShares(demand []int, budget int) []int {
	out := make([]int, len(demand))
	for {
		var open []int
		for i, d := range demand {
			if out[i] < d {
				open = append(open, i)
			}
		}
		if len(open) == 0 || budget <= 0 {
			return out
		}
		each := max(1, budget/len(open))
		for _, i := range open {
			give := min(each, demand[i]-out[i], budget)
			out[i] += give
			budget -= give
			if budget == 0 {
				break
			}
		}
	}
}

// readWindows reads, in one pipeline, a window of one state of one queue
// for each of n containers.
func (s *Store) readWindows(ctx context.Context, n int, at func(i int) (queue, state string, offset, count int)) ([]queueView, error) {
	now := s.now()
	day := now.UTC().Format("2006-01-02")
	cmds, err := s.evalPipelined(ctx, queueViewScript, n, func(i int) ([]string, []any) {
		queue, state, off, count := at(i)
		p := queuePrefix(queue)
		return queueViewKeys(p, day), []any{p + "t:", off, count, slices.Index(States, state) + 1}
	})
	if err != nil {
		return nil, s.wrap("search", err)
	}
	out := make([]queueView, n)
	for i, cmd := range cmds {
		queue, state, _, _ := at(i)
		v, err := s.parseQueueView(queue, []string{state}, cmd.Val(), now)
		if err != nil {
			return nil, fmt.Errorf("search %s: %w", queue, err)
		}
		out[i] = v
	}
	return out, nil
}

func matches(t Task, q SearchQuery, lowerText string) bool {
	if q.Type != "" && t.Type != q.Type || q.Type == "" && slices.Contains(q.Hide, t.Type) {
		return false
	}
	if lowerText != "" && !strings.Contains(strings.ToLower(t.LastError), lowerText) && !strings.Contains(strings.ToLower(string(t.Result)), lowerText) {
		return false
	}
	if !q.Since.IsZero() || !q.Until.IsZero() {
		in := func(at time.Time) bool {
			return !at.IsZero() && (q.Since.IsZero() || !at.Before(q.Since)) && (q.Until.IsZero() || !at.After(q.Until))
		}
		if !in(t.CompletedAt) && !in(t.LastFailedAt) {
			return false
		}
	}
	return true
}

// A cursor is each container's offset, "o1.o2…": opaque to clients,
// checked here.
func encodeCursor(offs []int) string {
	parts := make([]string, len(offs))
	for i, o := range offs {
		parts[i] = strconv.Itoa(o)
	}
	return strings.Join(parts, ".")
}

func parseCursor(raw string, containers int) ([]int, error) {
	offs := make([]int, containers)
	if raw == "" {
		return offs, nil
	}
	parts := strings.Split(raw, ".")
	if len(parts) != containers {
		return nil, fmt.Errorf("cursor %q: %w", raw, ErrBadCursor)
	}
	for i, p := range parts {
		o, err := strconv.Atoi(p)
		if err != nil || o < 0 || o > 1<<30 {
			return nil, fmt.Errorf("cursor %q: %w", raw, ErrBadCursor)
		}
		offs[i] = o
	}
	return offs, nil
}
