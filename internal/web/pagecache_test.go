package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"taskstack/internal/tasks"
	"taskstack/internal/web"
)

// submitForm posts the no-JavaScript form and returns the redirect's
// address, without following it.
func submitForm(t *testing.T, base, form string) string {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Post(base+"/tasks", "application/x-www-form-urlencoded", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /tasks: %d, want 303", resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

func submittedID(t *testing.T, location string) string {
	t.Helper()
	u, err := url.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	id := u.Query().Get("submitted")
	if id == "" {
		t.Fatalf("redirect %q names no task", location)
	}
	return id
}

// TestPageShowsSubmittedTask: the list page is rendered once per list
// snapshot, and the redirect after the form still shows the new task on top,
// marked as the viewer's and linked from the status line, before the
// snapshot has it: from this replica's memory, then (on a reload, or on
// another replica) read from Redis.
func TestPageShowsSubmittedTask(t *testing.T) {
	t.Parallel()
	f := setupLive(t, time.Hour) // the list snapshot never refreshes during the test
	if res := f.do(t, "GET", "/", nil); !strings.Contains(string(res.body), "No tasks yet") {
		t.Fatalf("empty page: %.300s", res.body)
	}
	loc := submitForm(t, f.srv.URL, "arg=hello&sleep=0s&queue=high")
	id := submittedID(t, loc)
	link := `<a href="/tasks/high/` + id + `">` + id + `</a>`
	mine := `<tr data-id="` + id + `" data-queue="high" data-state="pending" class="mine">`

	check := func(t *testing.T, base, path string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		if _, err := io.Copy(&b, resp.Body); err != nil {
			t.Fatal(err)
		}
		body := b.String()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Fatalf("GET %s: %d, CSP %q", path, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
		if !strings.Contains(body, `role="status">Task `+link+` submitted.</p>`) {
			t.Errorf("GET %s: the status line does not link the task:\n%s", path, body)
		}
		rows := body[strings.Index(body, `<tbody id="task-rows">`):]
		rows = rows[:strings.Index(rows, "</tbody>")]
		if !strings.Contains(rows, mine) || strings.Count(rows, "<tr") != 1 || strings.Contains(rows, "No tasks yet") {
			t.Errorf("GET %s: want only the submitted task's row, marked as mine; rows:\n%s", path, rows)
		}
		if !strings.Contains(body, `<noscript><p class="hint"><a href="`+strings.ReplaceAll(path, "&", "&amp;")+`">Refresh</a>`) {
			t.Errorf("GET %s: the Refresh link is not the page's own address", path)
		}
	}
	t.Run("redirect", func(t *testing.T) {
		f.count.reset()
		check(t, f.srv.URL, loc)
		// The snapshots are fresh and the task is in this replica's memory.
		if n := f.count.commands.Load(); n != 0 {
			t.Errorf("the redirect's page sent %d Redis commands %v, want none", n, f.count.names)
		}
	})
	t.Run("reload", func(t *testing.T) { check(t, f.srv.URL, loc) })
	t.Run("another replica", func(t *testing.T) {
		rc := redis.NewClient(&redis.Options{Addr: f.redis.Addr})
		t.Cleanup(func() { _ = rc.Close() })
		app, _ := newApp(t, rc, web.Options{LiveInterval: time.Hour})
		srv := httptest.NewServer(app)
		t.Cleanup(srv.Close)
		check(t, srv.URL, loc)
	})

	// Elsewhere than on the first page the task is named, not shown.
	res := f.do(t, "GET", "/?page=2&submitted="+id, nil)
	if body := string(res.body); !strings.Contains(body, `role="status">Task `+id+` submitted.</p>`) || strings.Contains(body, mine) {
		t.Errorf("page 2: want the task named in the status line only:\n%s", body)
	}
	// The plain page is the snapshot's, shared by everyone: it has no
	// status and no row of the viewer's.
	res = f.do(t, "GET", "/", nil)
	if body := string(res.body); strings.Contains(body, `class="mine"`) || !strings.Contains(body, `role="status"></p>`) {
		t.Errorf("plain page after a submission shows someone's task:\n%s", body)
	}
}

// TestPageFollowsSnapshot: a frame lives as long as its list snapshot; the
// next snapshot's page shows what changed.
func TestPageFollowsSnapshot(t *testing.T) {
	t.Parallel()
	f := setupLive(t, 50*time.Millisecond)
	if res := f.do(t, "GET", "/", nil); !strings.Contains(string(res.body), "No tasks yet") {
		t.Fatalf("empty page: %.300s", res.body)
	}
	p, err := tasks.NewCatalogue().Prepare(tasks.Request{Type: tasks.TypeEcho, Payload: []byte(`{"arg":"x"}`), Queue: tasks.QueueLow})
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.store.Enqueue(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	body := string(f.do(t, "GET", "/", nil).body)
	if !strings.Contains(body, `<tr data-id="`+e.ID+`" data-queue="low" data-state="pending">`) || strings.Contains(body, "No tasks yet") {
		t.Errorf("the next snapshot's page lacks the new task:\n%s", body)
	}
	// A filter is a page of its own.
	body = string(f.do(t, "GET", "/?queue=high", nil).body)
	if !strings.Contains(body, "No tasks match this filter.") || strings.Contains(body, e.ID) {
		t.Errorf("/?queue=high shows the low task:\n%s", body)
	}
}

// TestPageFramePerUser: the page rendered once per snapshot is kept per
// signed-in user, so nobody is shown as someone else.
func TestPageFramePerUser(t *testing.T) {
	t.Parallel()
	f := setupAuth(t, nil)
	for range 2 {
		for _, who := range []string{"reader", "writer", "admin"} {
			res := f.do(t, "GET", "/", nil, f.as(who)...)
			body := string(res.body)
			if res.status != 200 || !strings.Contains(body, "Signed in as <strong>"+who+"</strong>") {
				t.Fatalf("GET / as %s: %d, not shown as %s:\n%.2000s", who, res.status, who, body)
			}
		}
	}
}
