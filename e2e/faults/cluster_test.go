package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"taskstack/internal/testsupport"
)

// startCluster starts three redis-server masters with cluster mode on and
// joins them with `redis-cli --cluster create`.
func startCluster(t *testing.T) ([]string, *redis.ClusterClient) {
	t.Helper()
	var addrs []string
	for range 3 {
		r := testsupport.StartRedis(t, testsupport.RedisArgs(
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"))
		addrs = append(addrs, r.Addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := testsupport.Command(t, time.Minute, testsupport.LookPath(t, "redis-cli"), args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		testsupport.Eventually(t, 30*time.Second, a+" cluster_state:ok", func() bool {
			info, err := c.ClusterInfo(context.Background()).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
		_ = c.Close()
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { _ = cc.Close() })
	return addrs, cc
}

// TestCluster: app, worker and monitor on a 3-master Redis Cluster
// (REDIS_CLUSTER_ADDRS). The tutorial task runs on every queue, the list
// endpoints answer, an Idempotency-Key replays, DELETE cancels a running
// task and deletes a waiting one, and the monitor's dashboard and metrics
// work. Every key a script touches carries its queue's hash tag, so each
// queue lives on one node: a CROSSSLOT error would fail one of the above.
func TestCluster(t *testing.T) {
	t.Parallel()
	addrs, cc := startCluster(t)
	redisEnv := map[string]string{"REDIS_URL": "redis://" + addrs[0], "REDIS_CLUSTER_ADDRS": strings.Join(addrs, ",")}
	app := startApp(t, redisEnv)
	w := startWorker(t, redisEnv)
	monAddr := fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t))
	mon := testsupport.StartProcess(t, testsupport.BuildBinary(t, "monitor"), env(redisEnv, map[string]string{"MONITOR_ADDR": monAddr}))
	testsupport.WaitHTTP(t, mon, "http://"+monAddr+"/readyz", 60*time.Second)
	ctx := context.Background()

	t.Run("hash tags", func(t *testing.T) {
		for _, q := range []string{"high", "default", "low"} {
			slot := func(key string) int64 {
				n, err := cc.ClusterKeySlot(ctx, key).Result()
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			want := slot("asynq:{" + q + "}:pending")
			for _, k := range []string{"asynq:{" + q + "}:active", "asynq:{" + q + "}:lease", "asynq:{" + q + "}:t:some-id",
				"asynq:{" + q + "}:completed", "asynq:{" + q + "}:paused", "taskstack:{" + q + "}:cancelled:some-id"} {
				if got := slot(k); got != want {
					t.Errorf("%s hashes to slot %d, %s to %d", k, got, "asynq:{"+q+"}:pending", want)
				}
			}
		}
	})

	var subs []submission
	t.Run("tutorial task on every queue", func(t *testing.T) {
		for _, q := range []string{"high", "default", "low"} {
			arg := "cluster-" + q
			s := post(ctx, app.url, arg, echoBody(arg, "500ms", q), nil)
			if s.status != http.StatusAccepted {
				t.Fatalf("POST on %s: %d %v", q, s.status, s.err)
			}
			subs = append(subs, s)
		}
		o := settle(t, app.url, subs, []*proc{w}, time.Minute)
		o.check(t, true)
	})

	t.Run("lists", func(t *testing.T) {
		for _, path := range []string{"/api/v1/tasks", "/api/v1/tasks?state=completed&queue=high", "/api/v1/queues", "/finished_tasks"} {
			code, body := get(t, app.url+path)
			if code != http.StatusOK {
				t.Errorf("GET %s: %d %s", path, code, body)
			}
		}
		_, body := get(t, app.url+"/api/v1/tasks?state=completed")
		var page struct{ Total int }
		if err := json.Unmarshal(body, &page); err != nil || page.Total < 3 {
			t.Errorf("completed tasks: total %d (%v), want at least 3: %s", page.Total, err, body)
		}
	})

	t.Run("idempotency key", func(t *testing.T) {
		h := http.Header{"Idempotency-Key": {"cluster-key-1"}}
		first := post(ctx, app.url, "idem", echoBody("idem", "0s", "default"), h)
		again := post(ctx, app.url, "idem", echoBody("idem", "0s", "default"), h)
		other := post(ctx, app.url, "idem", echoBody("other", "0s", "default"), h)
		if first.status != http.StatusAccepted || again.status != http.StatusOK || again.id != first.id || other.status != http.StatusConflict {
			t.Errorf("first %d %s, again %d %s, other body %d; want 202, 200 with the same ID, 409",
				first.status, first.id, again.status, again.id, other.status)
		}
	})

	t.Run("delete and cancel", func(t *testing.T) {
		waiting := post(ctx, app.url, "later", `{"type":"demo:echo","payload":{"arg":"later","sleep":"0s"},"queue":"low","process_in":"1h"}`, nil)
		running := post(ctx, app.url, "long", echoBody("long", "5m", "high"), nil)
		if code, body := del(t, app.url+"/api/v1/queues/low/tasks/"+waiting.id); code != http.StatusNoContent {
			t.Errorf("DELETE waiting task: %d %s, want 204", code, body)
		}
		if _, found, err := getTask(ctx, app.url, "low", waiting.id); found || err != nil {
			t.Errorf("deleted task still there (%v)", err)
		}
		testsupport.Eventually(t, 30*time.Second, "long task running", func() bool {
			tv, _, _ := getTask(ctx, app.url, "high", running.id)
			return tv.State == "active"
		})
		if code, body := del(t, app.url+"/api/v1/queues/high/tasks/"+running.id); code != http.StatusAccepted {
			t.Errorf("DELETE running task: %d %s, want 202", code, body)
		}
		// Stopped: asynq schedules the cancelled run as a retry, which the
		// worker then ends for good (archived) without running it.
		testsupport.Eventually(t, 30*time.Second, "cancelled task stopped", func() bool {
			tv, _, _ := getTask(ctx, app.url, "high", running.id)
			return tv.State == "retry" || tv.State == "archived"
		})
	})

	t.Run("monitor", func(t *testing.T) {
		code, body := get(t, "http://"+monAddr+"/api/queues")
		if code != http.StatusOK || !strings.Contains(string(body), `"queue":"high"`) {
			t.Errorf("monitor GET /api/queues: %d %s", code, body)
		}
		_, metrics := get(t, "http://"+monAddr+"/metrics")
		for _, want := range []string{`asynq_queue_size{queue="high"}`, `taskstack_tasks_orphaned{queue="default"} 0`} {
			if !strings.Contains(string(metrics), want) {
				t.Errorf("monitor /metrics lacks %s", want)
			}
		}
	})
	figure(t, "cluster", "masters", len(addrs), "tutorial_tasks", len(subs), "ok", !t.Failed())
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func del(t *testing.T, url string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
