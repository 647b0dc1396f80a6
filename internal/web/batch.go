package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
)

// Batch bounds.
const (
	MaxBatchItems = 1000
	MaxBatchBytes = 8 << 20
	// batchWorkers enqueue a batch's items at once: each enqueue is one
	// round trip to Redis, and they overlap.
	batchWorkers = 16
)

// batchItem is one task of a batch: a task request plus its own
// idempotency key.
type batchItem struct {
	tasks.Request
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// batchResult is one item's outcome: created (id, state, links) or
// refused (the problem+json fields).
type batchResult struct {
	Index  int    `json:"index"`
	Status int    `json:"status"`
	ID     string `json:"id,omitempty"`
	Queue  string `json:"queue,omitempty"`
	Type   string `json:"type,omitempty"`
	State  string `json:"state,omitempty"`
	Links  *links `json:"links,omitempty"`
	// Refused items.
	Title  string             `json:"title,omitempty"`
	Detail string             `json:"detail,omitempty"`
	Errors []tasks.FieldError `json:"errors,omitempty"`
}

// createBatch is POST /api/v1/batches: up to MaxBatchItems task requests,
// each validated, limited and enqueued on its own. The answer is 207 with
// one result per item, in order; one bad item does not refuse the others.
func (s *Server) createBatch(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Tasks []json.RawMessage `json:"tasks"`
	}
	if err := tasks.DecodeStrict(http.MaxBytesReader(w, r.Body, MaxBatchBytes), &body); err != nil {
		return err
	}
	switch {
	case len(body.Tasks) == 0:
		return newProblem(http.StatusUnprocessableEntity, "the batch is empty", fieldError("tasks", "must hold at least one task"))
	case len(body.Tasks) > MaxBatchItems:
		return newProblem(http.StatusUnprocessableEntity, "the batch is too large",
			fieldError("tasks", fmt.Sprintf("must hold at most %d tasks, got %d", MaxBatchItems, len(body.Tasks))))
	}
	b := &batch{s: s, results: make([]batchResult, len(body.Tasks))}
	jobs := b.prepare(body.Tasks)
	jobs = b.admit(r, jobs)
	ctx, cancel := s.requestContext(r)
	defer cancel()
	b.enqueue(ctx, jobs)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		s.log.WarnContext(r.Context(), "batch ran past the request deadline", "items", len(body.Tasks))
	}
	counts := map[int]int{}
	note := auditNote(r.Context())
	note.Count = len(body.Tasks)
	for _, raw := range body.Tasks {
		note.PayloadBytes += len(raw)
	}
	for _, res := range b.results {
		counts[res.Status]++
		if res.ID != "" {
			note.TaskIDs = append(note.TaskIDs, res.ID)
		}
	}
	note.Detail = batchDetail(counts)
	return writeJSON(w, http.StatusMultiStatus, map[string]any{"results": b.results, "counts": counts})
}

// batch is one batch on its way: each item ends with a result, created
// or refused (results are written by one goroutine per item at a time).
type batch struct {
	s       *Server
	results []batchResult
}

// batchJob is a validated item.
type batchJob struct {
	i   int
	p   tasks.Prepared
	key string
}

func (b *batch) refuse(i int, err error) {
	p := classify(err)
	b.results[i] = batchResult{Index: i, Status: p.Status, Title: p.Title, Detail: p.Detail, Errors: p.Errors}
}

// prepare decodes and validates every item; the invalid ones are refused.
func (b *batch) prepare(items []json.RawMessage) []batchJob {
	var jobs []batchJob
	for i, raw := range items {
		var it batchItem
		if err := tasks.DecodeStrict(bytesReader(raw), &it); err != nil {
			b.refuse(i, err)
			b.s.countEnqueue("", "", err)
			continue
		}
		p, err := b.s.cat.Prepare(it.Request)
		if err != nil {
			b.refuse(i, err)
			b.s.countEnqueue(p.Type, p.Queue, err)
			continue
		}
		jobs = append(jobs, batchJob{i: i, p: p, key: it.IdempotencyKey})
	}
	return jobs
}

// admit keeps the jobs the caller's rate budget covers (as many as it has
// tokens for) and whose queue has room; a queue at its cap refuses the
// batch's items for it together.
func (b *batch) admit(r *http.Request, jobs []batchJob) []batchJob {
	granted := b.s.grantSubmits(r, len(jobs))
	for _, j := range jobs[granted:] {
		b.refuse(j.i, b.s.rateProblem(len(jobs)-granted))
	}
	jobs = jobs[:granted]
	perQueue := map[string]int{}
	for _, j := range jobs {
		perQueue[j.p.Queue]++
	}
	ok := jobs[:0]
	for _, j := range jobs {
		if err := b.s.store.Admit(j.p.Queue, perQueue[j.p.Queue]); err != nil {
			b.refuse(j.i, err)
			b.s.countEnqueue(j.p.Type, j.p.Queue, err)
			continue
		}
		ok = append(ok, j)
	}
	return ok
}

// enqueue enqueues the jobs, batchWorkers at a time.
func (b *batch) enqueue(ctx context.Context, jobs []batchJob) {
	work := make(chan batchJob)
	var wg sync.WaitGroup
	for range min(batchWorkers, len(jobs)) {
		wg.Go(func() {
			for j := range work {
				b.enqueueOne(ctx, j)
			}
		})
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
}

func (b *batch) enqueueOne(ctx context.Context, j batchJob) {
	var e store.Enqueued
	var err error
	if j.key != "" {
		e, err = b.s.store.EnqueueOnce(ctx, j.key, j.p)
	} else {
		e, err = b.s.store.Enqueue(ctx, j.p)
	}
	if err != nil {
		b.refuse(j.i, err)
		b.s.countEnqueue(j.p.Type, j.p.Queue, err)
		return
	}
	status := http.StatusAccepted
	if e.Replayed {
		status = http.StatusOK
	} else {
		b.s.countEnqueue(j.p.Type, j.p.Queue, nil)
	}
	b.results[j.i] = batchResult{Index: j.i, Status: status, ID: e.ID, Queue: e.Queue, Type: e.Type, State: e.State, Links: &links{Self: taskPath(e.Queue, e.ID)}}
}

// batchDetail words a batch's counts by status for its audit line:
// "202:998 422:2".
func batchDetail(counts map[int]int) string {
	var b strings.Builder
	for _, st := range slices.Sorted(maps.Keys(counts)) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d:%d", st, counts[st])
	}
	return b.String()
}
