package faults

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"taskstack/internal/testsupport"
)

const sentinelMaster = "mymaster"

// sentinels is a master, one replica and three redis-sentinel processes
// watching them (quorum 2, master down after 1 s).
type sentinels struct {
	master, replica *testsupport.Redis
	addrs           []string
}

func startSentinels(t *testing.T) *sentinels {
	t.Helper()
	master := testsupport.StartRedis(t)
	_, mport, _ := strings.Cut(master.Addr, ":")
	replica := testsupport.StartRedis(t, testsupport.RedisArgs("--replicaof", "127.0.0.1", mport))
	rc := replica.Client(t)
	testsupport.Eventually(t, 30*time.Second, "replica in sync", func() bool {
		info, err := rc.Info(context.Background(), "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	bin := testsupport.LookPath(t, "redis-sentinel")
	s := &sentinels{master: master, replica: replica}
	for range 3 {
		dir := t.TempDir()
		port := testsupport.FreePort(t)
		conf := filepath.Join(dir, "sentinel.conf")
		cfg := fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
sentinel monitor %s 127.0.0.1 %s 2
sentinel down-after-milliseconds %s 1000
sentinel failover-timeout %s 10000
sentinel parallel-syncs %s 1
`, port, dir, sentinelMaster, mport, sentinelMaster, sentinelMaster, sentinelMaster)
		if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		testsupport.StartProcess(t, bin, nil, conf)
		s.addrs = append(s.addrs, "127.0.0.1:"+strconv.Itoa(port))
	}
	// Each sentinel must know the replica (to promote it) and the two
	// other sentinels (to reach the quorum) before the master dies.
	for _, a := range s.addrs {
		sc := redis.NewSentinelClient(&redis.Options{Addr: a})
		t.Cleanup(func() { _ = sc.Close() })
		testsupport.Eventually(t, 60*time.Second, "sentinel "+a+" sees the replica and its peers", func() bool {
			ctx := context.Background()
			reps, err := sc.Replicas(ctx, sentinelMaster).Result()
			if err != nil || len(reps) == 0 {
				return false
			}
			peers, err := sc.Sentinels(ctx, sentinelMaster).Result()
			return err == nil && len(peers) == 2
		})
	}
	return s
}

func (s *sentinels) url() string {
	return "redis-sentinel://" + strings.Join(s.addrs, ",") + "?master=" + sentinelMaster
}

// TestSentinelFailover: app and worker reach Redis through Sentinel; the
// master is killed (SIGKILL) under load; Sentinel promotes the replica and
// app and worker go on without a restart. Every acknowledged task
// completes. (Replication is asynchronous: a write the master acknowledged
// in the instant before it died can be missing on the replica; see
// docs/reliability.md.)
func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	s := startSentinels(t)
	redisEnv := map[string]string{"REDIS_URL": s.url()}
	app := startApp(t, redisEnv)
	w := startWorker(t, env(redisEnv, map[string]string{"WORKER_CONCURRENCY": "20"}))

	// 4 clients, ~80 submissions/s of 200 ms tasks: about 8 s of load.
	l := &load{appURL: app.url, prefix: "sentinel", n: 600, clients: 4, pace: 50 * time.Millisecond, sleep: "200ms"}
	done := make(chan []submission)
	go func() { done <- l.run(context.Background()) }()
	testsupport.Eventually(t, time.Minute, "200 tasks accepted", func() bool { return l.accepted.Load() >= 200 })
	s.master.Stop()
	killed := time.Now()

	sc := redis.NewSentinelClient(&redis.Options{Addr: s.addrs[0]})
	defer sc.Close()
	var failover time.Duration
	testsupport.Eventually(t, time.Minute, "the replica promoted", func() bool {
		addr, err := sc.GetMasterAddrByName(context.Background(), sentinelMaster).Result()
		failover = time.Since(killed)
		return err == nil && len(addr) == 2 && addr[0]+":"+addr[1] == s.replica.Addr
	})
	subs := testsupport.Receive(t, done, 2*time.Minute, "an answer to every submission")
	// Then more work, however long the failover took: the app must take it.
	testsupport.Eventually(t, time.Minute, "the app accepts tasks again", func() bool {
		s := post(context.Background(), app.url, "sentinel-probe", echoBody("sentinel-probe", "0s", "default"), nil)
		if s.accepted() {
			subs = append(subs, s)
		}
		return s.accepted()
	})
	after := &load{appURL: app.url, prefix: "sentinel-after", n: 100, clients: 4, pace: 10 * time.Millisecond, sleep: "0s"}
	more := after.run(context.Background())
	if got := statuses(more); got[http.StatusAccepted] != after.n {
		t.Errorf("after the failover: %v, want %d × 202", got, after.n)
	}
	subs = append(subs, more...)

	// The app goes on: the first acknowledgement after the kill.
	appBack := time.Duration(-1)
	for _, sub := range subs {
		if end := sub.at.Add(sub.latency); sub.accepted() && sub.at.After(killed) && (appBack < 0 || end.Sub(killed) < appBack) {
			appBack = end.Sub(killed)
		}
		if sub.err != nil || (!sub.accepted() && sub.status != http.StatusServiceUnavailable) {
			t.Errorf("%s: %d %v; want 202 or 503", sub.arg, sub.status, sub.err)
		}
	}
	o := settle(t, app.url, subs, []*proc{w}, 2*time.Minute)
	o.check(t, false)
	// The worker goes on: the first task submitted after the kill that it ran.
	done2 := taskDone(w.Output(), killed)
	workerBack := time.Duration(-1)
	for _, sub := range subs {
		if at, ok := done2[sub.id]; ok && sub.accepted() && sub.at.After(killed) && (workerBack < 0 || at.Sub(killed) < workerBack) {
			workerBack = at.Sub(killed)
		}
	}
	st := statuses(subs)
	figure(t, "sentinel-failover", "submitted", len(subs), "accepted", o.accepted, "status_503", st[http.StatusServiceUnavailable],
		"lost", len(o.lost), "rerun_completed", len(o.rerun), "failover", failover,
		"app_first_2xx_after_kill", appBack, "worker_first_new_task_after_kill", workerBack)
}
