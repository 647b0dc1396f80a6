package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"taskstack/internal/store"
)

// TestPublishedSchedule: replicas publish in any order; the later last run
// wins, a replica that knows none keeps the stored one, and replacing the
// schedule removes entries the file no longer has.
func TestPublishedSchedule(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	t1, t2 := time.Unix(1767225600, 0).UTC(), time.Unix(1767229200, 0).UTC()
	a := store.ScheduleEntry{Name: "a", Cron: "@every 1h", Type: "demo:echo", Queue: "default", Enabled: true, LastRun: t2, LastTaskID: "sched:a:1767229200", NextRun: t2.Add(time.Hour)}
	z := store.ScheduleEntry{Name: "z", Cron: "0 3 * * *", Timezone: "Europe/Paris", Type: "demo:fail", Queue: "low"}
	if err := b.store.PublishSchedule(ctx, []store.ScheduleEntry{z, a}, true); err != nil {
		t.Fatal(err)
	}
	stale := a
	stale.LastRun, stale.LastTaskID = t1, "sched:a:1767225600"
	unknown := a
	unknown.LastRun, unknown.LastTaskID = time.Time{}, ""
	for _, e := range []store.ScheduleEntry{stale, unknown} {
		if err := b.store.PublishSchedule(ctx, []store.ScheduleEntry{e}, false); err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.store.Schedule(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.ScheduleEntry{a, z}, got); diff != "" {
		t.Errorf("schedule (-want +got):\n%s", diff)
	}
	if ttl := b.rc.TTL(ctx, "taskstack:schedule").Val(); ttl <= 0 || ttl > store.ScheduleTTL {
		t.Errorf("TTL %s, want up to %s", ttl, store.ScheduleTTL)
	}
	if err := b.store.PublishSchedule(ctx, []store.ScheduleEntry{z}, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.store.Schedule(ctx); len(got) != 1 || got[0].Name != "z" {
		t.Errorf("after replacing with z only: %+v", got)
	}
	if err := b.store.PublishSchedule(ctx, nil, true); err != nil {
		t.Fatal(err)
	}
	if got, err := b.store.Schedule(ctx); err != nil || len(got) != 0 {
		t.Errorf("an empty schedule: %+v, %v", got, err)
	}
}
