package web_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"taskstack/internal/store"
	"taskstack/internal/tasks"
	"taskstack/internal/testsupport"
	"taskstack/internal/web"
)

// cmdCounter is a go-redis hook counting what the app sends to Redis.
type cmdCounter struct {
	trips, commands atomic.Int64
	mu              sync.Mutex
	names           map[string]int
}

func (c *cmdCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *cmdCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.trips.Add(1)
		c.note(cmd)
		return next(ctx, cmd)
	}
}
func (c *cmdCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.trips.Add(1)
		for _, cmd := range cmds {
			c.note(cmd)
		}
		return next(ctx, cmds)
	}
}
func (c *cmdCounter) note(cmd redis.Cmder) {
	c.commands.Add(1)
	c.mu.Lock()
	c.names[strings.ToLower(cmd.Name())]++
	c.mu.Unlock()
}
func (c *cmdCounter) reset() {
	c.trips.Store(0)
	c.commands.Store(0)
	c.mu.Lock()
	c.names = map[string]int{}
	c.mu.Unlock()
}

type liveFixture struct {
	*fixture
	count *cmdCounter
}

func setupLive(t *testing.T, interval time.Duration) *liveFixture {
	t.Helper()
	r := testsupport.StartRedis(t)
	rc := redis.NewClient(&redis.Options{Addr: r.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rc.Close() })
	c := &cmdCounter{names: map[string]int{}}
	rc.AddHook(c)
	app, st := newApp(t, rc, web.Options{LiveInterval: interval})
	srv := serve(t, app)
	return &liveFixture{fixture: &fixture{srv: srv, redis: r, rc: rc, store: st}, count: c}
}

// fill enqueues n tasks spread over the queues, without the cmdCounter seeing
// them.
func (f *liveFixture) fill(t *testing.T, n int) {
	t.Helper()
	raw := redis.NewClient(&redis.Options{Addr: f.redis.Addr})
	defer raw.Close()
	st := store.New(store.Options{Redis: raw, Retention: time.Hour, Queues: tasks.Queues()})
	cat := tasks.NewCatalogue()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				p, err := cat.Prepare(tasks.Request{Type: tasks.TypeEcho, Payload: []byte(fmt.Sprintf(`{"arg":"f%d"}`, i)), Queue: tasks.Queues()[i%3]})
				if err == nil {
					_, err = st.Enqueue(context.Background(), p)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestRedisBudgetPerView pins what one view costs Redis, whatever the
// number of tasks: the page, the list and the queues each take at most 10
// round trips and 40 commands when read cold, none of them MEMORY USAGE.
func TestRedisBudgetPerView(t *testing.T) {
	t.Parallel()
	f := setupLive(t, time.Nanosecond) // every call reads Redis
	f.fill(t, 20_000)
	for _, path := range []string{"/", "/api/v1/tasks", "/api/v1/tasks?state=pending&queue=high&page=50", "/api/v1/queues", "/?state=completed"} {
		// Warm Redis's script cache first: a first call also loads scripts.
		f.do(t, "GET", path, nil)
		f.count.reset()
		res := f.do(t, "GET", path, nil)
		if res.status != 200 {
			t.Fatalf("GET %s: %d %.200s", path, res.status, res.body)
		}
		trips, cmds := f.count.trips.Load(), f.count.commands.Load()
		t.Logf("GET %s with 20,000 tasks: %d round trips, %d commands %v", path, trips, cmds, f.count.names)
		if trips > 10 || cmds > 40 {
			t.Errorf("GET %s: %d round trips and %d commands, want at most 10 and 40", path, trips, cmds)
		}
		if f.count.names["memory"] > 0 || f.count.names["info"] > 0 {
			t.Errorf("GET %s ran %v: memory is the monitor's business", path, f.count.names)
		}
	}
}

// TestViewersShareOneRead: fifty viewers of one page within an interval
// cost one read; an ETag answers 304 when nothing changed; a write through
// this replica is visible at once.
func TestViewersShareOneRead(t *testing.T) {
	t.Parallel()
	f := setupLive(t, time.Minute)
	f.fill(t, 50)
	f.do(t, "GET", "/", nil)
	f.count.reset()
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if res := f.do(t, "GET", "/", nil); res.status != 200 {
				t.Errorf("GET /: %d", res.status)
			}
		})
	}
	wg.Wait()
	if n := f.count.commands.Load(); n != 0 {
		t.Errorf("50 viewers within the interval sent %d commands, want none", n)
	}
	first := f.do(t, "GET", "/api/v1/tasks", nil)
	etag := first.header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on the list")
	}
	if res := f.do(t, "GET", "/api/v1/tasks", nil, "If-None-Match", etag); res.status != http.StatusNotModified || len(res.body) != 0 {
		t.Errorf("If-None-Match with the current ETag: %d, %d bytes", res.status, len(res.body))
	}
	created := f.post(t, `{"type":"demo:echo","payload":{"arg":"fresh"},"queue":"high"}`)
	// Lists are snapshots: a burst of writes must not make every viewer
	// read Redis again.
	if res := f.do(t, "GET", "/api/v1/tasks", nil, "If-None-Match", etag); res.status != http.StatusNotModified {
		t.Errorf("the list within its interval after a write: %d, want 304", res.status)
	}
	self := created.header.Get("Location")
	if res := f.do(t, "GET", self, nil); res.status != http.StatusOK {
		t.Errorf("a client reads its own new task at once: %d", res.status)
	}
	before := f.do(t, "GET", self, nil)
	if _, err := f.store.Delete(context.Background(), "high", created.json(t)["id"].(string)); err != nil {
		t.Fatal(err)
	}
	if again := f.do(t, "GET", self, nil, "If-None-Match", before.header.Get("ETag")); again.status != http.StatusNotModified {
		t.Errorf("a write elsewhere shows within the interval, not before: %d", again.status)
	}
	if res := f.do(t, "DELETE", self, nil); res.status != http.StatusNotFound {
		t.Errorf("DELETE of a task deleted meanwhile: %d", res.status)
	}
}

// sse reads a text/event-stream and sends each event's name and data.
func sse(t *testing.T, url string) (<-chan [2]string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	// A stream has no end to time out on, but its headers must come.
	noHeaders := time.AfterFunc(testsupport.RequestTimeout, cancel)
	resp, err := http.DefaultClient.Do(req)
	if !noHeaders.Stop() {
		t.Fatalf("GET %s: no response headers within %s", url, testsupport.RequestTimeout)
	}
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan [2]string, 16)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var name, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if name != "" || data != "" {
					select {
					case out <- [2]string{name, data}:
					case <-ctx.Done():
						return
					}
				}
				name, data = "", ""
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return out, cancel
}

func next(t *testing.T, ch <-chan [2]string, within time.Duration) [2]string {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(within):
		t.Fatalf("no event within %s", within)
	}
	return [2]string{}
}

func TestEventsPushChanges(t *testing.T) {
	t.Parallel()
	f := setupLive(t, 100*time.Millisecond)
	events, stop := sse(t, f.srv.URL+"/api/v1/events?queue=high")
	defer stop()
	if ev := next(t, events, 5*time.Second); ev[0] != "snapshot" || !strings.Contains(ev[1], `"tasks":[]`) {
		t.Fatalf("first event %q", ev)
	}
	id := f.post(t, `{"type":"demo:echo","payload":{"arg":"pushed"},"queue":"high"}`).json(t)["id"].(string)
	if ev := next(t, events, 5*time.Second); ev[0] != "snapshot" || !strings.Contains(ev[1], id) || !strings.Contains(ev[1], `"queues":[`) {
		t.Errorf("after a submit: %q", ev)
	}
	// The task's own stream, and its end.
	taskEvents, stopTask := sse(t, f.srv.URL+"/api/v1/events?view=task&queue=high&id="+id)
	defer stopTask()
	if ev := next(t, taskEvents, 5*time.Second); ev[0] != "snapshot" || !strings.Contains(ev[1], `"state":"pending"`) {
		t.Errorf("task stream: %q", ev)
	}
	if res := f.do(t, "DELETE", "/api/v1/queues/high/tasks/"+id, nil); res.status != 204 {
		t.Fatal(res.status)
	}
	if ev := next(t, taskEvents, 5*time.Second); ev[0] != "gone" {
		t.Errorf("a deleted task's stream: %q", ev)
	}
	for _, bad := range []string{"?view=nope", "?state=done", "?view=task&queue=urgent&id=x"} {
		if res := f.do(t, "GET", "/api/v1/events"+bad, nil); res.status < 400 || res.status >= 500 {
			t.Errorf("events%s: %d", bad, res.status)
		}
	}
}

// TestViewersDoNotMultiplyRedisLoad: the Redis commands a second of live
// viewing causes stay the same for one viewer and for fifty.
func TestViewersDoNotMultiplyRedisLoad(t *testing.T) {
	t.Parallel()
	f := setupLive(t, 100*time.Millisecond)
	f.fill(t, 100)
	rate := func(viewers int) float64 {
		var stops []func()
		for range viewers {
			ch, stop := sse(t, f.srv.URL+"/api/v1/events")
			next(t, ch, 5*time.Second)
			go func() {
				for range ch {
				}
			}()
			stops = append(stops, stop)
		}
		f.count.reset()
		time.Sleep(2 * time.Second)
		n := f.count.commands.Load()
		for _, s := range stops {
			s()
		}
		return float64(n) / 2
	}
	one, fifty := rate(1), rate(50)
	t.Logf("Redis commands per second: 1 live viewer %.1f, 50 viewers %.1f", one, fifty)
	if fifty > 2*one+1 {
		t.Errorf("50 viewers cost %.1f commands/s against %.1f for one: want at most twice", fifty, one)
	}
}
