package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"taskstack/internal/redisconn"
	"taskstack/internal/tasks"
)

// States a task can be listed by.
var listStates = []string{"pending", "active", "scheduled", "retry", "archived", "completed"}

// Paging bounds.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
	MaxPage         = 100
)

type listQuery struct {
	States   []string
	Queues   []string
	Page     int
	PageSize int
}

func parseListQuery(v url.Values) (listQuery, error) {
	var verr tasks.ValidationError
	q := listQuery{States: listStates, Queues: tasks.Queues(), Page: 1, PageSize: DefaultPageSize}
	if s := v.Get("state"); s != "" {
		if !slices.Contains(listStates, s) {
			verr.Add("state", fmt.Sprintf("unknown state %q (use %s)", s, strings.Join(listStates, ", ")))
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
	q.PageSize = num("page_size", DefaultPageSize, MaxPageSize)
	if len(verr.Fields) > 0 {
		return q, &verr
	}
	return q, nil
}

type taskPage struct {
	Tasks    []taskJSON `json:"tasks"`
	Page     int        `json:"page"`
	PageSize int        `json:"page_size"`
	Total    int        `json:"total"`
	Links    links      `json:"links"`
}

// listTasks merges the requested states and queues, newest first. asynq
// lists one queue and state at a time, so each is read up to the end of the
// requested page and the merge is cut to it: cheap for the bounded pages we
// allow (page*page_size <= 10,000).
func (s *Server) list(q listQuery) (taskPage, error) {
	limit := q.Page * q.PageSize
	var all []*asynq.TaskInfo
	total := 0
	if err := s.registerQueues(); err != nil {
		return taskPage{}, err
	}
	for _, queue := range q.Queues {
		qi, err := s.insp.GetQueueInfo(queue)
		if err != nil {
			return taskPage{}, fmt.Errorf("queue %s: %w", queue, err)
		}
		for _, state := range q.States {
			n := countState(qi, state)
			total += n
			got, err := s.newest(queue, state, n, limit)
			if err != nil {
				return taskPage{}, fmt.Errorf("list %s tasks of %s: %w", state, queue, err)
			}
			all = append(all, got...)
		}
	}
	slices.SortStableFunc(all, func(a, b *asynq.TaskInfo) int {
		if c := sortTime(b).Compare(sortTime(a)); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	start := min((q.Page-1)*q.PageSize, len(all))
	end := min(start+q.PageSize, len(all))
	page := taskPage{Tasks: []taskJSON{}, Page: q.Page, PageSize: q.PageSize, Total: total}
	for _, ti := range all[start:end] {
		page.Tasks = append(page.Tasks, toTaskJSON(ti))
	}
	return page, nil
}

// newest returns up to limit of the newest tasks of one queue and state.
// asynq lists every state oldest first, so with n tasks the newest are the
// last limit positions: read the one or two asynq pages (of size limit)
// that hold them.
func (s *Server) newest(queue, state string, n, limit int) ([]*asynq.TaskInfo, error) {
	if n <= 0 {
		return nil, nil
	}
	first := max(0, n-limit) / limit // zero-based asynq page holding position n-limit
	var out []*asynq.TaskInfo
	for page := first; page <= first+1; page++ {
		got, err := s.listState(queue, state, limit, page+1)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
		if len(got) < limit {
			break
		}
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}

func (s *Server) listState(queue, state string, limit, page int) ([]*asynq.TaskInfo, error) {
	opts := []asynq.ListOption{asynq.PageSize(limit), asynq.Page(page)}
	switch state {
	case "pending":
		return s.insp.ListPendingTasks(queue, opts...)
	case "active":
		return s.insp.ListActiveTasks(queue, opts...)
	case "scheduled":
		return s.insp.ListScheduledTasks(queue, opts...)
	case "retry":
		return s.insp.ListRetryTasks(queue, opts...)
	case "archived":
		return s.insp.ListArchivedTasks(queue, opts...)
	case "completed":
		return s.insp.ListCompletedTasks(queue, opts...)
	}
	return nil, fmt.Errorf("unknown state %q", state)
}

func countState(qi *asynq.QueueInfo, state string) int {
	switch state {
	case "pending":
		return qi.Pending
	case "active":
		return qi.Active
	case "scheduled":
		return qi.Scheduled
	case "retry":
		return qi.Retry
	case "archived":
		return qi.Archived
	case "completed":
		return qi.Completed
	}
	return 0
}

// sortTime orders tasks by when they were submitted, falling back to what
// asynq records for tasks enqueued without our headers.
func sortTime(ti *asynq.TaskInfo) time.Time {
	if at, ok := tasks.EnqueuedAt(ti.Headers); ok {
		return at
	}
	for _, t := range []time.Time{ti.CompletedAt, ti.LastFailedAt, ti.NextProcessAt} {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) error {
	q, err := parseListQuery(r.URL.Query())
	if err != nil {
		return err
	}
	page, err := s.list(q)
	if err != nil {
		return err
	}
	link := func(p int) string {
		v := r.URL.Query()
		v.Set("page", strconv.Itoa(p))
		v.Set("page_size", strconv.Itoa(q.PageSize))
		return "/api/v1/tasks?" + v.Encode()
	}
	page.Links.Self = link(q.Page)
	if q.Page*q.PageSize < page.Total && q.Page < MaxPage {
		page.Links.Next = link(q.Page + 1)
	}
	if q.Page > 1 {
		page.Links.Prev = link(q.Page - 1)
	}
	return writeJSON(w, http.StatusOK, page)
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
	page, err := s.list(listQuery{States: []string{"completed"}, Queues: tasks.Queues(), Page: 1, PageSize: MaxPageSize})
	if err != nil {
		return err
	}
	out := []finishedTask{}
	for _, t := range page.Tasks {
		ft := finishedTask{ID: t.ID, Queue: t.Queue, Type: t.Type, CompletedAt: t.CompletedAt}
		if t.Result != nil {
			ft.Result = *t.Result
		}
		out = append(out, ft)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"finished_tasks": out, "total": page.Total})
}

// registerQueues puts our queues in asynq's set of queues, which is what
// its inspector reads them from. asynq adds a queue there only the first
// time a process enqueues to it, so an empty queue would be "not found",
// and after Redis lost its data (a restart without persistence, a
// failover) queues holding new tasks would look empty. Ours are fixed.
func (s *Server) registerQueues() error {
	ctx, cancel := context.WithTimeout(context.Background(), redisconn.ReadTimeout)
	defer cancel()
	if err := s.redis.SAdd(ctx, "asynq:queues", tasks.QueueHigh, tasks.QueueDefault, tasks.QueueLow).Err(); err != nil {
		return fmt.Errorf("register queues: %w", err)
	}
	return nil
}

// taskInfo is Inspector.GetTaskInfo, registering our queues again when asynq
// says the queue does not exist (see registerQueues).
func (s *Server) taskInfo(queue, id string) (*asynq.TaskInfo, error) {
	ti, err := s.insp.GetTaskInfo(queue, id)
	if errors.Is(err, asynq.ErrQueueNotFound) {
		if qerr := s.registerQueues(); qerr != nil {
			return nil, qerr
		}
		ti, err = s.insp.GetTaskInfo(queue, id)
	}
	return ti, err
}
