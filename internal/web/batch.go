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
	results := make([]batchResult, len(body.Tasks))
	refuse := func(i int, err error) {
		p := classify(err)
		results[i] = batchResult{Index: i, Status: p.Status, Title: p.Title, Detail: p.Detail, Errors: p.Errors}
	}
	// Decode and validate every item first.
	type job struct {
		i   int
		p   tasks.Prepared
		key string
	}
	var jobs []job
	perQueue := map[string]int{}
	for i, raw := range body.Tasks {
		var it batchItem
		if err := tasks.DecodeStrict(bytesReader(raw), &it); err != nil {
			refuse(i, err)
			s.countEnqueue("", "", err)
			continue
		}
		p, err := s.cat.Prepare(it.Request)
		if err != nil {
			refuse(i, err)
			s.countEnqueue(p.Type, p.Queue, err)
			continue
		}
		jobs = append(jobs, job{i: i, p: p, key: it.IdempotencyKey})
		perQueue[p.Queue]++
	}
	// The caller's rate budget covers as many items as it has tokens for.
	granted := s.grantSubmits(r, len(jobs))
	for _, j := range jobs[granted:] {
		refuse(j.i, s.rateProblem(len(jobs)-granted))
	}
	jobs = jobs[:granted]
	// A queue at its cap refuses the batch's items for it together.
	ok := jobs[:0]
	for _, j := range jobs {
		if err := s.store.Admit(j.p.Queue, perQueue[j.p.Queue]); err != nil {
			refuse(j.i, err)
			s.countEnqueue(j.p.Type, j.p.Queue, err)
			continue
		}
		ok = append(ok, j)
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	work := make(chan job)
	var wg sync.WaitGroup
	for range min(batchWorkers, len(ok)) {
		wg.Go(func() {
			for j := range work {
				var e store.Enqueued
				var err error
				if j.key != "" {
					e, err = s.store.EnqueueOnce(ctx, j.key, j.p)
				} else {
					e, err = s.store.Enqueue(ctx, j.p)
				}
				if err != nil {
					refuse(j.i, err)
					s.countEnqueue(j.p.Type, j.p.Queue, err)
					continue
				}
				status := http.StatusAccepted
				if e.Replayed {
					status = http.StatusOK
				} else {
					s.countEnqueue(j.p.Type, j.p.Queue, nil)
				}
				self := taskPath(e.Queue, e.ID)
				results[j.i] = batchResult{Index: j.i, Status: status, ID: e.ID, Queue: e.Queue, Type: e.Type, State: e.State, Links: &links{Self: self}}
			}
		})
	}
	for _, j := range ok {
		work <- j
	}
	close(work)
	wg.Wait()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		s.log.WarnContext(r.Context(), "batch ran past the request deadline", "items", len(body.Tasks))
	}
	counts := map[int]int{}
	note := auditNote(r.Context())
	note.Count = len(body.Tasks)
	for _, raw := range body.Tasks {
		note.PayloadBytes += len(raw)
	}
	for _, res := range results {
		counts[res.Status]++
		if res.ID != "" {
			note.TaskIDs = append(note.TaskIDs, res.ID)
		}
	}
	note.Detail = batchDetail(counts)
	return writeJSON(w, http.StatusMultiStatus, map[string]any{"results": results, "counts": counts})
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
