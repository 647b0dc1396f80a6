package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"taskstack/internal/testsupport"
)

// TestScheduleWithThreeWorkerBinaries runs the real worker binary three
// times against one redis-server with one schedule file, and the app:
// every tick is enqueued once although a worker is SIGKILLed mid-run, the
// page and the API show the schedule, and a changed file adds an entry.
func TestScheduleWithThreeWorkerBinaries(t *testing.T) {
	t.Parallel()
	workerBin := testsupport.BuildBinary(t, "worker")
	appBin := testsupport.BuildBinary(t, "app")
	r := testsupport.StartRedis(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "schedule.yml")
	write := func(content string) {
		t.Helper()
		// As a ConfigMap update does: a new file renamed over the old.
		if err := os.WriteFile(file+".new", []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".new", file); err != nil {
			t.Fatal(err)
		}
	}
	write("entries:\n  - {name: tick, cron: '@every 1s', type: demo:echo, payload: {arg: tick, sleep: 0s}, queue: high}\n")

	var workers []*testsupport.Process
	var admins []string
	for i := range 3 {
		admin := fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t))
		admins = append(admins, "http://"+admin)
		workers = append(workers, testsupport.StartProcess(t, workerBin, map[string]string{
			"REDIS_URL": r.URL, "LOG_FORMAT": "json", "WORKER_ADMIN_ADDR": admin, "SCHEDULE_FILE": file,
			"OTEL_SERVICE_NAME": fmt.Sprintf("worker-%d", i),
		}))
	}
	appAddr := fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t))
	app := testsupport.StartProcess(t, appBin, map[string]string{"REDIS_URL": r.URL, "LOG_FORMAT": "json", "APP_ADDR": appAddr,
		"APP_ADMIN_ADDR": fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t))})
	appURL := "http://" + appAddr
	for i, w := range workers {
		testsupport.WaitHTTP(t, w, admins[i]+"/readyz", 60*time.Second)
	}
	testsupport.WaitHTTP(t, app, appURL+"/readyz", 60*time.Second)

	exists := func(u int64) bool {
		var tv taskView
		return getJSON(t, fmt.Sprintf("%s/api/v1/queues/high/tasks/sched:tick:%d", appURL, u), &tv) == http.StatusOK
	}
	first := time.Now().Unix() + 2
	testsupport.Eventually(t, 60*time.Second, "the fourth tick", func() bool { return exists(first + 3) })
	if err := workers[1].Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(t, 60*time.Second, "the tenth tick after a worker was killed", func() bool { return exists(first + 9) })

	var page struct {
		Tasks []taskView `json:"tasks"`
		Total int        `json:"total"`
	}
	getJSON(t, appURL+"/api/v1/tasks?queue=high&page_size=100", &page)
	seen := map[int64]int{}
	for _, tv := range page.Tasks {
		if rest, ok := strings.CutPrefix(tv.ID, "sched:tick:"); ok {
			u, err := strconv.ParseInt(rest, 10, 64)
			if err != nil {
				t.Fatalf("task %q is not a tick's", tv.ID)
			}
			seen[u]++
		}
	}
	for u := first; u <= first+9; u++ {
		if seen[u] != 1 {
			t.Errorf("tick %d has %d tasks, want 1 (ticks seen: %v)", u, seen[u], seen)
		}
	}
	// The surviving workers refused duplicates; their counts add up.
	enqueued, duplicate := 0.0, 0.0
	for _, i := range []int{0, 2} {
		fams := scrape(t, admins[i]+"/metrics")
		enqueued += value(fams["taskstack_schedule_runs_total"], map[string]string{"entry": "tick", "outcome": "enqueued"})
		duplicate += value(fams["taskstack_schedule_runs_total"], map[string]string{"entry": "tick", "outcome": "duplicate"})
	}
	if duplicate == 0 || enqueued == 0 {
		t.Errorf("surviving workers: %v enqueued, %v duplicate; want both", enqueued, duplicate)
	}
	t.Logf("%d tick tasks in Redis; the two surviving workers enqueued %v and refused %v duplicates", len(seen), enqueued, duplicate)

	if body := fetch(t, appURL+"/", "text/html"); !strings.Contains(body, "Periodic tasks") || !strings.Contains(body, `href="/tasks/high/sched:tick:`) {
		t.Error("the page does not show the schedule with a link to the last run")
	}

	write("entries:\n  - {name: tick, cron: '@every 1s', type: demo:echo, payload: {arg: tick, sleep: 0s}, queue: high}\n" +
		"  - {name: hourly, cron: '0 * * * *', type: demo:fail, enabled: false}\n")
	testsupport.Eventually(t, 60*time.Second, "the added entry on GET /api/v1/schedule", func() bool {
		var s struct {
			Entries []struct {
				Name    string `json:"name"`
				Enabled bool   `json:"enabled"`
			} `json:"entries"`
		}
		getJSON(t, appURL+"/api/v1/schedule", &s)
		return len(s.Entries) == 2 && s.Entries[0].Name == "hourly" && !s.Entries[0].Enabled
	})
}
