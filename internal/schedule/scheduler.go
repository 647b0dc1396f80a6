package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"taskstack/internal/audit"
	"taskstack/internal/store"
	"taskstack/internal/tasks"
)

// Store is what the scheduler needs of the task store.
type Store interface {
	Enqueue(ctx context.Context, p tasks.Prepared) (store.Enqueued, error)
	PublishSchedule(ctx context.Context, entries []store.ScheduleEntry, replace bool) error
}

// Defaults of Options.
const (
	// DefaultGrace is how late a tick may still be enqueued: a worker that
	// starts within a minute of a tick nobody enqueued (a restart of every
	// replica at once, a deploy) enqueues it; older ticks are skipped.
	DefaultGrace = time.Minute
	// MinRetention is the least a tick's task must be kept: longer than
	// DefaultGrace, with a wide margin for clock skew between replicas.
	MinRetention = time.Hour
	// DefaultReloadEvery is how often the file is read for changes.
	DefaultReloadEvery = 5 * time.Second
	// DefaultPublishEvery is how often the schedule is republished for the
	// page although nothing ticked (store.ScheduleTTL is longer).
	DefaultPublishEvery = 30 * time.Second
	// enqueueTimeout bounds one enqueue attempt.
	enqueueTimeout = 5 * time.Second
)

// Options build a Scheduler.
type Options struct {
	// Path is the schedule file, read again every ReloadEvery.
	Path      string
	Catalogue *tasks.Catalogue
	Store     Store
	// Grace is how late a tick may still be enqueued: when the scheduler
	// starts, the latest tick within Grace before now is enqueued (once:
	// if another replica did, Redis refuses it); a running scheduler that
	// wakes up late enqueues the latest tick within Grace and skips older
	// ones. Zero skips every tick not enqueued on time (within 2s). Tasks
	// must be kept (the store's retention) longer than Grace: a kept task
	// is what refuses a second enqueue of its tick.
	Grace        time.Duration
	ReloadEvery  time.Duration
	PublishEvery time.Duration
	// Now is the clock (time.Now when nil).
	Now      func() time.Time
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// Audit records each reload of the file (nil: not recorded).
	Audit *audit.Recorder
}

// Scheduler enqueues the schedule's ticks. Every replica runs one: each
// tick's task has the ID sched:<entry>:<unix tick time>, so Redis accepts
// the first replica's enqueue and refuses the others'.
type Scheduler struct {
	o       Options
	log     *slog.Logger
	m       *metrics
	sched   *Schedule
	badHash string
	states  map[string]*state
	// published is false after a failed publish, so an outage is logged
	// once, not on every tick.
	published bool
}

// state is what the scheduler knows of one entry.
type state struct {
	entry Entry
	// due is the tick to enqueue next (zero when disabled).
	due time.Time
	// retryAt is set while an enqueue of due failed and is retried.
	retryAt  time.Time
	attempts int
	// last is the latest tick known to be enqueued, lastID its task.
	last   time.Time
	lastID string
}

// TaskID is the ID of an entry's task for one tick.
func TaskID(entry string, tick time.Time) string {
	return fmt.Sprintf("sched:%s:%d", entry, tick.Unix())
}

// New builds a scheduler for the validated schedule s (Load's result).
// Ticks due within Grace before now are enqueued at once when it runs.
func New(o Options, s *Schedule) (*Scheduler, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.ReloadEvery <= 0 {
		o.ReloadEvery = DefaultReloadEvery
	}
	if o.PublishEvery <= 0 {
		o.PublishEvery = DefaultPublishEvery
	}
	if o.Grace < 0 {
		return nil, errors.New("schedule: negative grace")
	}
	m, err := newMetrics(o.Registry)
	if err != nil {
		return nil, err
	}
	sc := &Scheduler{o: o, log: o.Logger, m: m, sched: &Schedule{}, states: map[string]*state{}, published: true}
	sc.apply(s, o.Now(), o.Grace)
	return sc, nil
}

// Run enqueues ticks until ctx is done, reading the file again every
// ReloadEvery.
func (s *Scheduler) Run(ctx context.Context) error {
	s.log.InfoContext(ctx, "schedule running", slog.String("file", s.o.Path), slog.Int("entries", len(s.sched.Entries)),
		slog.Duration("grace", s.o.Grace))
	s.publish(ctx, true)
	reload := time.NewTicker(s.o.ReloadEvery)
	defer reload.Stop()
	republish := time.NewTicker(s.o.PublishEvery)
	defer republish.Stop()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		wake := s.fire(ctx, s.o.Now())
		timer.Reset(wake)
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-reload.C:
			s.reload(ctx)
		case <-republish.C:
			s.publish(ctx, true)
		}
	}
}

// idle is how long Run sleeps when no entry is enabled.
const idle = time.Hour

// fire enqueues every tick that is due at now and returns how long to
// sleep until the next one.
func (s *Scheduler) fire(ctx context.Context, now time.Time) time.Duration {
	wake := now.Add(idle)
	for _, e := range s.sched.Entries {
		st := s.states[e.Name]
		if st.due.IsZero() {
			continue
		}
		if at := st.wake(); !at.After(now) {
			s.attempt(ctx, st, now)
		}
		if at := st.wake(); at.Before(wake) {
			wake = at
		}
	}
	return max(0, wake.Sub(s.o.Now()))
}

func (st *state) wake() time.Time {
	if !st.retryAt.IsZero() {
		return st.retryAt
	}
	return st.due
}

// attempt enqueues the latest tick that is due, if it is not older than
// Grace; ticks it passes over are missed.
func (s *Scheduler) attempt(ctx context.Context, st *state, now time.Time) {
	name := st.entry.Name
	tick, passed := dueTicks(st.entry.spec, st.due, now)
	if tick.IsZero() { // cannot happen: st.due <= now is a tick
		st.due = st.entry.spec.Next(now)
		return
	}
	if !tick.Equal(st.due) {
		st.retryAt, st.attempts = time.Time{}, 0
	}
	if passed > 0 {
		s.m.runs.WithLabelValues(name, outcomeMissed).Add(float64(passed))
	}
	if now.Sub(tick) > s.window() {
		s.m.runs.WithLabelValues(name, outcomeMissed).Inc()
		s.log.WarnContext(ctx, "schedule tick missed: later than the grace", slog.String("entry", name),
			slog.Time("tick", tick), slog.Duration("late", now.Sub(tick)), slog.Int("passed_over", passed))
		s.advance(st, tick)
		return
	}
	p := st.entry.prepared
	p.ID = TaskID(name, tick)
	actx, cancel := context.WithTimeout(ctx, enqueueTimeout)
	_, err := s.o.Store.Enqueue(actx, p)
	cancel()
	switch {
	case err == nil || errors.Is(err, asynq.ErrTaskIDConflict):
		outcome := outcomeEnqueued
		if err != nil {
			outcome = outcomeDuplicate // another replica enqueued this tick first
		}
		s.m.runs.WithLabelValues(name, outcome).Inc()
		s.log.DebugContext(ctx, "schedule tick", slog.String("entry", name), slog.String("task_id", p.ID), slog.String("outcome", outcome))
		st.last, st.lastID = tick, p.ID
		s.m.lastRun.WithLabelValues(name).Set(float64(tick.Unix()))
		s.advance(st, tick)
	case ctx.Err() != nil:
		return // shutting down: the tick is another replica's, or missed
	default:
		s.m.runs.WithLabelValues(name, outcomeError).Inc()
		st.attempts++
		retry := now.Add(backoff(st.attempts))
		if retry.Sub(tick) <= s.window() {
			st.due, st.retryAt = tick, retry
			level := slog.LevelWarn
			if st.attempts > 1 {
				level = slog.LevelDebug // said once per tick is enough during an outage
			}
			s.log.Log(ctx, level, "schedule tick not enqueued; retrying", slog.String("entry", name), slog.String("task_id", p.ID),
				slog.Time("retry_at", retry), slog.Any("err", err))
			return
		}
		s.log.ErrorContext(ctx, "schedule tick not enqueued; giving up on it", slog.String("entry", name), slog.String("task_id", p.ID), slog.Any("err", err))
		s.advance(st, tick)
		return
	}
	s.publishOne(ctx, st)
}

// onTime is how late a running scheduler may enqueue a tick even with no
// grace: timers fire a little late, and a slow enqueue delays the next.
const onTime = 2 * time.Second

// window is how late a tick may be enqueued by a running scheduler.
func (s *Scheduler) window() time.Duration { return max(s.o.Grace, onTime) }

// advance moves st past tick.
func (s *Scheduler) advance(st *state, tick time.Time) {
	st.due, st.retryAt, st.attempts = st.entry.spec.Next(tick), time.Time{}, 0
	s.m.nextRun.WithLabelValues(st.entry.Name).Set(float64(unixOrZero(st.due)))
}

func backoff(attempt int) time.Duration {
	return min(time.Second<<min(attempt-1, 5), 30*time.Second)
}

// dueTicks returns the latest tick in [from, to] and how many ticks before
// it that range holds (ticks passed over).
func dueTicks(s spec, from, to time.Time) (latest time.Time, passed int) {
	if e, ok := s.(every); ok {
		d := int64(time.Duration(e) / time.Second)
		first := s.Next(from.Add(-time.Nanosecond)).Unix()
		last := to.Unix() / d * d
		if last < first {
			return time.Time{}, 0
		}
		return time.Unix(last, 0), int((last - first) / d)
	}
	for t := s.Next(from.Add(-time.Nanosecond)); !t.IsZero() && !t.After(to); t = s.Next(t) {
		if !latest.IsZero() {
			passed++
		}
		latest = t
	}
	return latest, passed
}

// apply makes next the schedule in force at now. An entry that keeps its
// cron line and time zone keeps its place; a new or changed one starts at
// its first tick within grace before now, or else its next tick.
func (s *Scheduler) apply(next *Schedule, now time.Time, grace time.Duration) (added, removed, changed int) {
	states := map[string]*state{}
	for _, e := range next.Entries {
		old, had := s.states[e.Name]
		st := &state{entry: e}
		switch {
		case had && old.entry.Cron == e.Cron && old.entry.Timezone == e.Timezone && old.entry.Enabled == e.Enabled:
			st.due, st.retryAt, st.attempts = old.due, old.retryAt, old.attempts
		case !e.Enabled:
		default:
			if t := latestWithin(e.spec, now.Add(-grace), now); grace > 0 && !t.IsZero() {
				st.due = t
			} else {
				st.due = e.spec.Next(now)
			}
		}
		switch {
		case !had:
			added++
		case old.entry.Cron != e.Cron || old.entry.Timezone != e.Timezone || old.entry.Enabled != e.Enabled ||
			old.entry.Type != e.Type || old.entry.Queue != e.Queue || string(old.entry.Payload) != string(e.Payload):
			changed++
		}
		if had {
			st.last, st.lastID = old.last, old.lastID
		}
		states[e.Name] = st
		s.m.add(e.Name)
		if st.due.IsZero() {
			s.m.nextRun.DeleteLabelValues(e.Name)
		} else {
			s.m.nextRun.WithLabelValues(e.Name).Set(float64(st.due.Unix()))
		}
	}
	for name := range s.states {
		if _, ok := states[name]; !ok {
			removed++
			s.m.remove(name)
		}
	}
	s.sched, s.states = next, states
	return added, removed, changed
}

// reload reads the file and applies it if its content changed and it is
// valid; a bad file keeps the schedule in force.
func (s *Scheduler) reload(ctx context.Context) {
	data, err := os.ReadFile(s.o.Path)
	if err != nil {
		s.m.refused.Set(1)
		if s.badHash != "unreadable" {
			s.m.reloads.WithLabelValues(reloadError).Inc()
			s.log.ErrorContext(ctx, "schedule file unreadable; keeping the schedule in force", slog.String("file", s.o.Path), slog.Any("err", err))
			s.o.Audit.Record(ctx, audit.Event{Actor: audit.System, Action: audit.ScheduleReload, Outcome: audit.Error, Detail: err.Error()})
		}
		s.badHash = "unreadable"
		return
	}
	h := contentHash(data)
	if h == s.sched.hash {
		s.badHash = ""
		s.m.refused.Set(0) // back to the file in force
		return
	}
	if h == s.badHash {
		return
	}
	next, err := Parse(s.o.Path, data, s.o.Catalogue)
	if err != nil {
		s.badHash = h
		s.m.refused.Set(1)
		s.m.reloads.WithLabelValues(reloadError).Inc()
		s.log.ErrorContext(ctx, "schedule file invalid; keeping the schedule in force", slog.String("file", s.o.Path), slog.Any("err", err))
		s.o.Audit.Record(ctx, audit.Event{Actor: audit.System, Action: audit.ScheduleReload, Outcome: audit.Rejected,
			Detail: fmt.Sprintf("%s refused, the schedule in force kept: %v", s.o.Path, err)})
		return
	}
	s.badHash = ""
	s.m.refused.Set(0)
	added, removed, changed := s.apply(next, s.o.Now(), 0)
	s.m.reloads.WithLabelValues(reloadOK).Inc()
	s.log.InfoContext(ctx, "schedule reloaded", slog.String("file", s.o.Path), slog.Int("entries", len(next.Entries)),
		slog.Int("added", added), slog.Int("removed", removed), slog.Int("changed", changed))
	s.o.Audit.Record(ctx, audit.Event{Actor: audit.System, Action: audit.ScheduleReload, Outcome: audit.OK, Count: len(next.Entries),
		Detail: fmt.Sprintf("%s: %d added, %d removed, %d changed", s.o.Path, added, removed, changed)})
	s.publish(ctx, true)
}

func (s *Scheduler) record(st *state) store.ScheduleEntry {
	e := st.entry
	return store.ScheduleEntry{
		Name: e.Name, Cron: e.Cron, Timezone: e.Timezone, Type: e.Type, Queue: e.Queue, Enabled: e.Enabled,
		LastRun: st.last, LastTaskID: st.lastID, NextRun: st.due,
	}
}

// publish writes the whole schedule for the page.
func (s *Scheduler) publish(ctx context.Context, replace bool) {
	entries := make([]store.ScheduleEntry, 0, len(s.sched.Entries))
	for _, e := range s.sched.Entries {
		entries = append(entries, s.record(s.states[e.Name]))
	}
	s.published = s.report(ctx, s.o.Store.PublishSchedule(ctx, entries, replace))
}

func (s *Scheduler) publishOne(ctx context.Context, st *state) {
	s.published = s.report(ctx, s.o.Store.PublishSchedule(ctx, []store.ScheduleEntry{s.record(st)}, false))
}

func (s *Scheduler) report(ctx context.Context, err error) bool {
	if err != nil && s.published && ctx.Err() == nil {
		s.log.WarnContext(ctx, "could not publish the schedule for the page", slog.Any("err", err))
	}
	return err == nil
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
