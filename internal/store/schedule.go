package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// scheduleKey is a hash of the periodic tasks the workers run, one field
// per entry name, written by every worker that runs the schedule and read
// by the app, which does not run it.
const scheduleKey = "taskstack:schedule"

// ScheduleTTL is how long the published schedule outlives its last write:
// workers republish it more often than this, so it disappears from the page
// only when no worker runs a schedule any more.
const ScheduleTTL = 5 * time.Minute

// ScheduleEntry is one periodic task as the page shows it.
type ScheduleEntry struct {
	Name     string
	Cron     string
	Timezone string
	Type     string
	Queue    string
	Enabled  bool
	// LastRun is the latest tick whose task was enqueued (by any worker),
	// LastTaskID that task's ID; NextRun the next tick. Zero when unknown.
	LastRun    time.Time
	LastTaskID string
	NextRun    time.Time
}

// scheduleRecord is ScheduleEntry as stored (times in Unix seconds, which
// the merge script compares).
type scheduleRecord struct {
	Name       string `json:"name"`
	Cron       string `json:"cron"`
	Timezone   string `json:"timezone,omitempty"`
	Type       string `json:"type"`
	Queue      string `json:"queue"`
	Enabled    bool   `json:"enabled"`
	LastRun    int64  `json:"last_run,omitempty"`
	LastTaskID string `json:"last_task_id,omitempty"`
	NextRun    int64  `json:"next_run,omitempty"`
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func timeOrZero(u int64) time.Time {
	if u == 0 {
		return time.Time{}
	}
	return time.Unix(u, 0).UTC()
}

// publishScript writes entries, keeping for each the later of its stored
// and its new last run: replicas write in any order, and one that just
// started knows no last run yet. With replace set, entries not given are
// removed (the file no longer has them).
//
// KEYS: schedule hash. ARGV: TTL (s), "1" to replace, then entry JSONs.
var publishScript = redis.NewScript(`
local keep = {}
for i = 3, #ARGV do
	local e = cjson.decode(ARGV[i])
	local old = redis.call("HGET", KEYS[1], e.name)
	if old then
		local o = cjson.decode(old)
		if type(o.last_run) == "number" and (type(e.last_run) ~= "number" or o.last_run > e.last_run) then
			e.last_run = o.last_run
			e.last_task_id = o.last_task_id
		end
	end
	redis.call("HSET", KEYS[1], e.name, cjson.encode(e))
	keep[e.name] = true
end
if ARGV[2] == "1" then
	for _, name in ipairs(redis.call("HKEYS", KEYS[1])) do
		if not keep[name] then
			redis.call("HDEL", KEYS[1], name)
		end
	end
end
if redis.call("EXISTS", KEYS[1]) == 1 then
	redis.call("EXPIRE", KEYS[1], ARGV[1])
end
return 1
`)

// PublishSchedule records periodic tasks for the page. With replace, the
// published schedule becomes exactly entries (an empty list removes it).
func (s *Store) PublishSchedule(ctx context.Context, entries []ScheduleEntry, replace bool) error {
	args := []any{strconv.Itoa(int(ScheduleTTL / time.Second)), "0"}
	if replace {
		args[1] = "1"
	}
	for _, e := range entries {
		raw, err := json.Marshal(scheduleRecord{
			Name: e.Name, Cron: e.Cron, Timezone: e.Timezone, Type: e.Type, Queue: e.Queue, Enabled: e.Enabled,
			LastRun: unixOrZero(e.LastRun), LastTaskID: e.LastTaskID, NextRun: unixOrZero(e.NextRun),
		})
		if err != nil {
			return fmt.Errorf("publish schedule: %w", err)
		}
		args = append(args, string(raw))
	}
	if err := publishScript.Run(ctx, s.rc, []string{scheduleKey}, args...).Err(); err != nil {
		return s.wrap("publish schedule", err)
	}
	return nil
}

// Schedule returns the periodic tasks the workers publish, by name; none
// when no worker runs a schedule.
func (s *Store) Schedule(ctx context.Context) ([]ScheduleEntry, error) {
	raw, err := s.rc.HGetAll(ctx, scheduleKey).Result()
	if err != nil {
		return nil, s.wrap("read schedule", err)
	}
	out := make([]ScheduleEntry, 0, len(raw))
	for _, v := range raw {
		var r scheduleRecord
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			s.log.WarnContext(ctx, "skipping a malformed schedule record", "err", err)
			continue
		}
		out = append(out, ScheduleEntry{
			Name: r.Name, Cron: r.Cron, Timezone: r.Timezone, Type: r.Type, Queue: r.Queue, Enabled: r.Enabled,
			LastRun: timeOrZero(r.LastRun), LastTaskID: r.LastTaskID, NextRun: timeOrZero(r.NextRun),
		})
	}
	slices.SortFunc(out, func(a, b ScheduleEntry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
