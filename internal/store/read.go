package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"taskstack/internal/tasks"
	"time"

	"github.com/redis/go-redis/v9"
)

// States a task can be in, in the order of asynq's containers.
var States = []string{"pending", "active", "scheduled", "retry", "archived", "completed"}

// Task is one task as the store reads it from asynq's data.
type Task struct {
	ID        string
	Queue     string
	Type      string
	State     string
	Payload   []byte
	Result    []byte
	HasResult bool
	LastError string
	Retried   int
	MaxRetry  int
	Timeout   time.Duration
	Headers   map[string]string
	// Zero when unknown or not applicable.
	EnqueuedAt    time.Time
	NextProcessAt time.Time
	LastFailedAt  time.Time
	CompletedAt   time.Time
	// Attempts are the last MaxAttempts runs, oldest first (read with one
	// task only: lists leave them out).
	Attempts []Attempt
}

func (s *Store) taskFrom(queue, state string, msg, result []byte, hasResult bool, score int64) (Task, error) {
	m, err := decodeMessage(msg)
	if err != nil {
		return Task{}, err
	}
	t := Task{
		ID: m.ID, Queue: queue, Type: m.Type, State: state, Payload: m.Payload,
		Result: result, HasResult: hasResult, LastError: m.ErrorMsg,
		Retried: m.Retried, MaxRetry: m.Retry, Timeout: time.Duration(m.Timeout) * time.Second,
		Headers: m.Headers,
	}
	if at, ok := tasks.EnqueuedAt(m.Headers); ok {
		t.EnqueuedAt = at
	}
	if m.LastFailedAt > 0 {
		t.LastFailedAt = time.Unix(m.LastFailedAt, 0)
	}
	if m.CompletedAt > 0 {
		t.CompletedAt = time.Unix(m.CompletedAt, 0)
	}
	if (state == "scheduled" || state == "retry") && score > 0 {
		t.NextProcessAt = time.Unix(score, 0)
	}
	return t, nil
}

// sortTime orders tasks by when they were submitted, falling back to what
// asynq records for tasks enqueued without our headers.
func (t Task) sortTime() time.Time {
	for _, at := range []time.Time{t.EnqueuedAt, t.CompletedAt, t.LastFailedAt, t.NextProcessAt} {
		if !at.IsZero() {
			return at
		}
	}
	return time.Time{}
}

func queuePrefix(queue string) string { return "asynq:{" + queue + "}:" }

// getTaskScript reads one task: its message, state, result, for the
// sorted-set states its score (next run, archive or expiry time), and its
// attempts.
//
// KEYS: task key, attempts key. ARGV: queue key prefix, id.
var getTaskScript = redis.NewScript(`
local msg, state, result = unpack(redis.call("HMGET", KEYS[1], "msg", "state", "result"))
if not msg then
	return false
end
local score = false
if state == "scheduled" or state == "retry" or state == "archived" or state == "completed" then
	score = redis.call("ZSCORE", ARGV[1] .. state, ARGV[2])
end
return {msg, state, result, score, redis.call("LRANGE", KEYS[2], 0, -1)}
`)

// Task reads one task; ErrNotFound when the queue holds no task with id.
func (s *Store) Task(ctx context.Context, queue, id string) (Task, error) {
	res, err := getTaskScript.Run(ctx, s.rc, []string{queuePrefix(queue) + "t:" + id, attemptsKey(queue, id)}, queuePrefix(queue), id).Result()
	if errors.Is(err, redis.Nil) {
		return Task{}, ErrNotFound
	}
	if err != nil {
		return Task{}, s.wrap("read task "+queue+"/"+id, err)
	}
	return s.parseTask(queue, id, res)
}

func (s *Store) parseTask(queue, id string, res any) (Task, error) {
	vals, ok := res.([]any)
	if !ok || len(vals) < 2 {
		return Task{}, fmt.Errorf("read task %s/%s: unexpected answer %T", queue, id, res)
	}
	msg, _ := vals[0].(string)
	state, _ := vals[1].(string)
	var result string
	hasResult := false
	if len(vals) > 2 {
		result, hasResult = vals[2].(string)
	}
	var score int64
	if len(vals) > 3 {
		if sc, ok := vals[3].(string); ok {
			score = parseScore(sc)
		}
	}
	t, err := s.taskFrom(queue, state, []byte(msg), resultBytes(result, hasResult), hasResult, score)
	if err != nil {
		return Task{}, fmt.Errorf("read task %s/%s: %w", queue, id, err)
	}
	if len(vals) > 4 {
		t.Attempts = parseAttempts(queue, id, vals[4])
	}
	return t, nil
}

// Find reads a task by ID alone, looking in every queue (one round trip).
func (s *Store) Find(ctx context.Context, id string) (Task, error) {
	pipe := s.rc.Pipeline()
	cmds := make([]*redis.Cmd, len(s.queues))
	for i, q := range s.queues {
		cmds[i] = getTaskScript.EvalSha(ctx, pipe, []string{queuePrefix(q) + "t:" + id, attemptsKey(q, id)}, queuePrefix(q), id)
	}
	_, err := pipe.Exec(ctx)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		if lerr := getTaskScript.Load(ctx, s.rc).Err(); lerr != nil {
			return Task{}, s.wrap("load task script", lerr)
		}
		for _, q := range s.queues {
			if t, err := s.Task(ctx, q, id); err == nil || !errors.Is(err, ErrNotFound) {
				return t, err
			}
		}
		return Task{}, ErrNotFound
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return Task{}, s.wrap("find task "+id, err)
	}
	for i, cmd := range cmds {
		if cmd.Err() != nil {
			continue
		}
		t, err := s.parseTask(s.queues[i], id, cmd.Val())
		if err == nil {
			return t, nil
		}
	}
	return Task{}, ErrNotFound
}

func resultBytes(r string, ok bool) []byte {
	if !ok || r == "" {
		return nil
	}
	return []byte(r)
}

func parseScore(s string) int64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return int64(f)
}

// QueueStats is one queue's size by state and its activity today.
type QueueStats struct {
	Queue          string
	Pending        int
	Active         int
	Scheduled      int
	Retry          int
	Archived       int
	Completed      int
	ProcessedToday int
	FailedToday    int
	// Latency is the age of the oldest pending task.
	Latency time.Duration
	Paused  bool
}

// Size is the number of tasks in the queue, whatever their state.
func (q QueueStats) Size() int {
	return q.Pending + q.Active + q.Scheduled + q.Retry + q.Archived + q.Completed
}

func (q QueueStats) count(state string) int {
	switch state {
	case "pending":
		return q.Pending
	case "active":
		return q.Active
	case "scheduled":
		return q.Scheduled
	case "retry":
		return q.Retry
	case "archived":
		return q.Archived
	case "completed":
		return q.Completed
	}
	return 0
}

// queueViewScript reads one queue in one call: its counts by state, today's
// processed and failed counters, whether it is paused, the enqueue time of
// its oldest pending task and, for each state asked for, a window of its
// newest tasks (id, message, result, score). Every key it touches carries
// the queue's hash tag, so it runs on one Redis Cluster node.
//
// KEYS: pending, active, scheduled, retry, archived, completed,
// processed:<today>, failed:<today>, paused.
// ARGV: task key prefix, offset, count, then the 1-based indexes of the
// states to list.
var queueViewScript = redis.NewScript(`
local out = {}
for i = 1, 2 do table.insert(out, redis.call("LLEN", KEYS[i])) end
for i = 3, 6 do table.insert(out, redis.call("ZCARD", KEYS[i])) end
for i = 7, 8 do table.insert(out, tonumber(redis.call("GET", KEYS[i]) or "0")) end
table.insert(out, redis.call("EXISTS", KEYS[9]))
local since = "0"
if out[1] > 0 then
	local oldest = redis.call("LINDEX", KEYS[1], -1)
	if oldest then
		since = redis.call("HGET", ARGV[1] .. oldest, "pending_since") or "0"
	end
end
table.insert(out, since)
local off, n = tonumber(ARGV[2]), tonumber(ARGV[3])
for a = 4, #ARGV do
	local i = tonumber(ARGV[a])
	local entries = {}
	if n > 0 then
		if i <= 2 then
			for _, id in ipairs(redis.call("LRANGE", KEYS[i], off, off + n - 1)) do
				table.insert(entries, id)
				table.insert(entries, "0")
			end
		else
			entries = redis.call("ZREVRANGE", KEYS[i], off, off + n - 1, "WITHSCORES")
		end
	end
	table.insert(out, #entries / 2)
	for e = 1, #entries, 2 do
		local msg, result = unpack(redis.call("HMGET", ARGV[1] .. entries[e], "msg", "result"))
		table.insert(out, msg)
		table.insert(out, result)
		table.insert(out, entries[e + 1])
	end
end
return out
`)

// window asks queueView for up to count tasks per state, from offset on
// (newest first), of the queues listed (every queue's statistics come
// anyway).
type window struct {
	queues        []string
	states        []string
	offset, count int
}

type queueView struct {
	stats QueueStats
	tasks map[string][]Task // by state, newest first
	// pos is each task's position in the window read (tasks whose hash
	// was gone are skipped), read how many IDs the window held.
	pos  map[string][]int
	read map[string]int
}

// viewQueues runs queueViewScript for every queue in one pipeline.
func (s *Store) viewQueues(ctx context.Context, queues []string, w window) ([]queueView, error) {
	now := s.now()
	day := now.UTC().Format("2006-01-02")
	idx := make([]any, 0, len(w.states))
	for _, st := range w.states {
		idx = append(idx, slices.Index(States, st)+1)
	}
	cmds, err := s.evalPipelined(ctx, queueViewScript, len(queues), func(i int) ([]string, []any) {
		q := queues[i]
		p := queuePrefix(q)
		args := []any{p + "t:", 0, 0}
		if slices.Contains(w.queues, q) {
			args = append([]any{p + "t:", w.offset, w.count}, idx...)
		}
		return queueViewKeys(p, day), args
	})
	if err != nil {
		return nil, s.wrap("read queues", err)
	}
	out := make([]queueView, len(queues))
	for i, cmd := range cmds {
		states := w.states
		if !slices.Contains(w.queues, queues[i]) {
			states = nil
		}
		v, err := s.parseQueueView(queues[i], states, cmd.Val(), now)
		if err != nil {
			return nil, fmt.Errorf("read queue %s: %w", queues[i], err)
		}
		out[i] = v
	}
	return out, nil
}

func (s *Store) parseQueueView(queue string, states []string, raw any, now time.Time) (queueView, error) {
	vals, ok := raw.([]any)
	if !ok || len(vals) < 10 {
		return queueView{}, fmt.Errorf("unexpected answer %T", raw)
	}
	num := func(i int) int { n, _ := vals[i].(int64); return int(n) }
	v := queueView{
		stats: QueueStats{
			Queue: queue, Pending: num(0), Active: num(1), Scheduled: num(2), Retry: num(3),
			Archived: num(4), Completed: num(5), ProcessedToday: num(6), FailedToday: num(7),
			Paused: num(8) == 1,
		},
		tasks: map[string][]Task{},
		pos:   map[string][]int{},
		read:  map[string]int{},
	}
	if since, _ := vals[9].(string); since != "" && since != "0" {
		if ns, err := strconv.ParseInt(since, 10, 64); err == nil {
			v.stats.Latency = max(0, now.Sub(time.Unix(0, ns)))
		}
	}
	pos := 10
	for _, state := range states {
		if pos >= len(vals) {
			return queueView{}, errors.New("short answer")
		}
		n, _ := vals[pos].(int64)
		pos++
		v.read[state] = int(n)
		for k := range int(n) {
			if pos+2 >= len(vals) {
				return queueView{}, errors.New("short answer")
			}
			msg, hasMsg := vals[pos].(string)
			result, hasResult := vals[pos+1].(string)
			score, _ := vals[pos+2].(string)
			pos += 3
			if !hasMsg {
				continue // the task hash is gone (deleted or expired meanwhile)
			}
			t, err := s.taskFrom(queue, state, []byte(msg), resultBytes(result, hasResult), hasResult, parseScore(score))
			if err != nil {
				continue // not asynq's message: skip it, as asynq's own listing does
			}
			v.tasks[state] = append(v.tasks[state], t)
			v.pos[state] = append(v.pos[state], k)
		}
	}
	return v, nil
}

// Queues returns the statistics of every queue, in priority order.
func (s *Store) Queues(ctx context.Context) ([]QueueStats, error) {
	views, err := s.viewQueues(ctx, s.queues, window{})
	if err != nil {
		return nil, err
	}
	out := make([]QueueStats, len(views))
	for i, v := range views {
		out[i] = v.stats
	}
	return out, nil
}

// Paging bounds.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
	// MaxScan is the most tasks one list call reads from Redis, whatever
	// the page: a page deeper than that is refused (ErrTooDeep).
	MaxScan = 1000
)

// Query selects tasks to list, newest first.
type Query struct {
	States   []string // empty: every state
	Queues   []string // empty: every queue
	Page     int      // from 1
	PageSize int
	// Hide leaves tasks of these types out of the page and its total (the
	// canary's). Only the tasks read are filtered: a page holds fewer
	// tasks by the number hidden in it (a few at most).
	Hide []string
}

// Page is one page of tasks and how many tasks match in all.
type Page struct {
	Tasks []Task
	Total int
}

// ErrTooDeep is a page that would make one call read more than MaxScan
// tasks; its text tells the client how to get there.
var ErrTooDeep = fmt.Errorf("this page lies past the newest %d tasks that one call reads across several queues or states; filter by one state and one queue to page further", MaxScan)

// List returns one page of tasks, newest first, with the statistics of
// every queue read on the way (the page needs both). Within one queue and
// state the window read is exactly the page; across several, each is read
// up to the end of the page and the merge is cut to it, which is refused
// past MaxScan tasks.
func (s *Store) List(ctx context.Context, q Query) (Page, []QueueStats, error) {
	q = q.withDefaults(s.queues)
	end := q.Page * q.PageSize
	single := len(q.States) == 1 && len(q.Queues) == 1
	w := window{queues: q.Queues, states: q.States, offset: 0, count: end}
	if single {
		w.offset, w.count = end-q.PageSize, q.PageSize
	} else if end*len(q.States)*len(q.Queues) > MaxScan {
		// Might be too deep: count first, then read only what is there.
		stats, err := s.Queues(ctx)
		if err != nil {
			return Page{}, nil, err
		}
		reads := 0
		for _, st := range stats {
			if slices.Contains(q.Queues, st.Queue) {
				for _, state := range q.States {
					reads += min(st.count(state), end)
				}
			}
		}
		if reads > MaxScan {
			return Page{}, stats, ErrTooDeep
		}
	}
	// Statistics come for every queue; tasks only for the queues asked for.
	views, err := s.viewQueues(ctx, s.queues, w)
	if err != nil {
		return Page{}, nil, err
	}
	var page Page
	var all []Task
	stats := make([]QueueStats, len(views))
	for i, v := range views {
		stats[i] = v.stats
		if !slices.Contains(q.Queues, v.stats.Queue) {
			continue
		}
		for _, state := range q.States {
			page.Total += v.stats.count(state)
			for _, t := range v.tasks[state] {
				if slices.Contains(q.Hide, t.Type) {
					page.Total--
					continue
				}
				all = append(all, t)
			}
		}
	}
	if single {
		page.Tasks = all
		return page, stats, nil
	}
	slices.SortStableFunc(all, func(a, b Task) int {
		if c := b.sortTime().Compare(a.sortTime()); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	start := min(end-q.PageSize, len(all))
	page.Tasks = all[start:min(end, len(all))]
	return page, stats, nil
}

func (q Query) withDefaults(queues []string) Query {
	if len(q.States) == 0 {
		q.States = States
	}
	if len(q.Queues) == 0 {
		q.Queues = queues
	}
	q.Page = max(q.Page, 1)
	if q.PageSize <= 0 {
		q.PageSize = DefaultPageSize
	}
	return q
}

// KnownState reports whether s is a state tasks can be listed by.
func KnownState(s string) bool { return slices.Contains(States, s) }

// StateList is States joined for messages.
func StateList() string { return strings.Join(States, ", ") }
