package web

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestWriteRowEscapes(t *testing.T) {
	t.Parallel()
	at := time.Now().Add(-3 * time.Second)
	next := time.Now().Add(time.Minute)
	res := `<script>alert("x")</script>&'`
	var b bytes.Buffer
	writeRow(&b, taskJSON{ID: `a"b<c>`, Queue: "high", Type: "demo:echo", State: "retry", Retried: 2,
		Result: &res, EnqueuedAt: &at, NextProcessAt: &next}, true)
	got := b.String()
	for _, want := range []string{
		`<tr data-id="a&#34;b&lt;c&gt;" data-queue="high" data-state="retry" class="mine">`,
		`<a href="/tasks/high/a%22b%3Cc%3E">a&#34;b&lt;c&gt;</a><small>demo:echo</small>`,
		`<span class="state state-retry">retry</span> <small>retried 2×</small>`,
		`<samp>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;&#39;</samp><small class="next">next try in 1m0s</small>`,
		`<time datetime="` + at.UTC().Format(time.RFC3339) + `" title="` + stamp(&at) + `">3s ago</time>`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("row lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "<script") {
		t.Errorf("row carries markup from the task:\n%s", got)
	}

	b.Reset()
	writeRow(&b, taskJSON{ID: "i", Queue: "low", Type: "demo:fail", State: "archived", LastError: "<boom>"}, false)
	if got := b.String(); !strings.Contains(got, `data-state="archived">`) || !strings.Contains(got, `<span class="err">&lt;boom&gt;</span>`) || !strings.Contains(got, `<td data-label="Submitted"></td>`) {
		t.Errorf("archived row:\n%s", got)
	}

	b.Reset()
	writeRefresh(&b, `/?q="><script>`)
	if got := b.String(); got != `<a href="/?q=&#34;&gt;&lt;script&gt;">Refresh</a>` {
		t.Errorf("refresh link: %s", got)
	}
	b.Reset()
	writeStatus(&b, `x<y`, "default")
	if got := b.String(); got != `Task <a href="/tasks/default/x%3Cy">x&lt;y</a> submitted.` {
		t.Errorf("status: %s", got)
	}
}
