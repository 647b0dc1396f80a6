package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"taskstack/internal/testsupport"
	"taskstack/internal/web"
)

// BenchmarkThousandTasks submits 1,000 demo:echo tasks over real HTTP to
// the app on a real redis-server, as one client would: one POST
// /api/v1/tasks after another (singles), or one POST /api/v1/batches
// (batch). One op is the 1,000 tasks; tasks/s is reported. Redis is
// emptied between ops, outside the timer, so every op starts alike.
// The ratio is in docs/benchmarks.md ("Batches").
func BenchmarkThousandTasks(b *testing.B) {
	const n = 1000
	r := testsupport.StartRedis(b)
	rc := redis.NewClient(&redis.Options{Addr: r.Addr, PoolSize: 32})
	b.Cleanup(func() { _ = rc.Close() })
	app, _ := newApp(b, rc, web.Options{})
	srv := httptest.NewServer(app)
	b.Cleanup(srv.Close)
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}

	item := func(i int) string {
		return fmt.Sprintf(`{"type":"demo:echo","payload":{"arg":"t%d","sleep":"0s"},"queue":"default"}`, i)
	}
	post := func(b *testing.B, path, body string, want int) []byte {
		res, err := client.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		out, err := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if err != nil || res.StatusCode != want {
			b.Fatalf("POST %s: %d %s (%v)", path, res.StatusCode, out, err)
		}
		return out
	}
	flush := func(b *testing.B) {
		b.StopTimer()
		if err := rc.FlushDB(context.Background()).Err(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}

	b.Run("singles", func(b *testing.B) {
		for b.Loop() {
			flush(b)
			for i := range n {
				post(b, "/api/v1/tasks", item(i), http.StatusAccepted)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tasks/s")
	})

	var batch bytes.Buffer
	batch.WriteString(`{"tasks":[`)
	for i := range n {
		if i > 0 {
			batch.WriteByte(',')
		}
		batch.WriteString(item(i))
	}
	batch.WriteString(`]}`)
	b.Run("batch", func(b *testing.B) {
		for b.Loop() {
			flush(b)
			var out struct {
				Results []struct {
					Status int `json:"status"`
				} `json:"results"`
			}
			if err := json.Unmarshal(post(b, "/api/v1/batches", batch.String(), http.StatusMultiStatus), &out); err != nil {
				b.Fatal(err)
			}
			for i, res := range out.Results {
				if res.Status != http.StatusAccepted && res.Status != http.StatusCreated {
					b.Fatalf("item %d: status %d", i, res.Status)
				}
			}
			if len(out.Results) != n {
				b.Fatalf("%d results, want %d", len(out.Results), n)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tasks/s")
	})
}
