package compose

import (
	"testing"

	"taskstack/internal/schedule"
	"taskstack/internal/tasks"
)

// TestScheduleFileMounted: in every environment the worker's SCHEDULE_FILE
// is inside a read-only bind mount (a directory, so an editor that replaces
// the file is seen by the reload), and the shipped file is a valid schedule.
func TestScheduleFileMounted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, env := range envs {
		t.Run(env, func(t *testing.T) {
			p := b.mustLoad(t, env)
			w := p.Services["worker"]
			given := envOf(t, w)
			if given["SCHEDULE_FILE"] == "" {
				t.Fatal("the worker gets no SCHEDULE_FILE")
			}
			for _, m := range w.Volumes {
				if m.Target == "/etc/taskstack" && !m.ReadOnly {
					t.Errorf("the schedule mount %s is writable", m.Target)
				}
			}
			path := onHost(t, w, given, "SCHEDULE_FILE")["SCHEDULE_FILE"]
			s, err := schedule.Load(path, tasks.NewCatalogue())
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Entries) == 0 {
				t.Error("the shipped schedule is empty: it should show an example")
			}
		})
	}
}
