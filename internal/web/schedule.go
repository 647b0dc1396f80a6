package web

import (
	"context"
	"net/http"
	"time"

	"taskstack/internal/store"
)

// scheduleJSON is one periodic task as the workers running the schedule
// publish it (the app does not run it).
type scheduleJSON struct {
	Name     string     `json:"name"`
	Cron     string     `json:"cron"`
	Timezone string     `json:"timezone,omitempty"`
	Type     string     `json:"type"`
	Queue    string     `json:"queue"`
	Enabled  bool       `json:"enabled"`
	LastRun  *time.Time `json:"last_run"`
	NextRun  *time.Time `json:"next_run"`
	// LastTask is the task of the last run: its ID and API link.
	LastTaskID string `json:"last_task_id,omitempty"`
	Links      struct {
		LastTask string `json:"last_task,omitempty"`
	} `json:"links"`
}

func toScheduleJSON(es []store.ScheduleEntry) []scheduleJSON {
	out := make([]scheduleJSON, len(es))
	for i, e := range es {
		out[i] = scheduleJSON{
			Name: e.Name, Cron: e.Cron, Timezone: e.Timezone, Type: e.Type, Queue: e.Queue, Enabled: e.Enabled,
			LastRun: timePtr(e.LastRun), NextRun: timePtr(e.NextRun), LastTaskID: e.LastTaskID,
		}
		if e.LastTaskID != "" {
			out[i].Links.LastTask = taskPath(e.Queue, e.LastTaskID)
		}
	}
	return out
}

// listSchedule answers the periodic tasks with their last and next run.
func (s *Server) listSchedule(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := s.requestContext(r)
	defer cancel()
	snap, err := s.scheduleSnapshot(ctx)
	if err != nil {
		return err
	}
	return writeSnapshot(w, r, snap)
}

const scheduleKey = "schedule"

// scheduleSnapshot reads (or reuses, like every view) the published schedule.
func (s *Server) scheduleSnapshot(ctx context.Context) (*snapshot, error) {
	return s.live.get(ctx, scheduleKey, func(ctx context.Context) (any, error) {
		es, err := s.store.Schedule(ctx)
		if err != nil {
			return nil, err
		}
		return map[string]any{"entries": toScheduleJSON(es)}, nil
	})
}
