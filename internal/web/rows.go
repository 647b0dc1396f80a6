package web

import (
	"bytes"
	"html"
	"strconv"
	"time"
)

// The parts of the list page that differ between requests (pagecache.go)
// are written here rather than by html/template, whose reflection costs
// ~40 µs for one task row: the redirect after each form submission shows
// a row nobody has seen yet. Every value goes through html.EscapeString,
// which is enough in text and in quoted attributes; the markup matches the
// rows app.js builds.

// writeRow writes one row of the task list; mine marks the task the form
// just submitted.
func writeRow(b *bytes.Buffer, t taskJSON, mine bool) {
	esc := func(s string) { b.WriteString(html.EscapeString(s)) }
	b.WriteString("\n      <tr data-id=\"")
	esc(t.ID)
	b.WriteString("\" data-queue=\"")
	esc(t.Queue)
	b.WriteString("\" data-state=\"")
	esc(t.State)
	b.WriteString("\"")
	if mine {
		b.WriteString(" class=\"mine\"")
	}
	b.WriteString(">\n        <td data-label=\"Task\" data-key=\"")
	esc(t.ID + "|" + t.Type)
	b.WriteString("\"><div><a href=\"")
	esc(taskURL(t.Queue, t.ID))
	b.WriteString("\">")
	esc(t.ID)
	b.WriteString("</a><small>")
	esc(t.Type)
	b.WriteString("</small></div></td>\n        <td data-label=\"Queue\">")
	esc(t.Queue)
	b.WriteString("</td>\n        <td data-label=\"State\"><div><span class=\"state state-")
	esc(t.State)
	b.WriteString("\">")
	esc(t.State)
	b.WriteString("</span>")
	if t.Retried != 0 {
		b.WriteString(" <small>retried " + strconv.Itoa(t.Retried) + "×</small>")
	}
	b.WriteString("</div></td>\n        <td data-label=\"Result\" class=\"result\"><div>")
	switch {
	case t.Result != nil:
		b.WriteString("<samp>")
		esc(*t.Result)
		b.WriteString("</samp>")
	case t.LastError != "":
		b.WriteString("<span class=\"err\">")
		esc(t.LastError)
		b.WriteString("</span>")
	}
	if t.NextProcessAt != nil && (t.State == "scheduled" || t.State == "retry") {
		b.WriteString("<small class=\"next\">")
		if t.State == "retry" {
			b.WriteString("next try ")
		} else {
			b.WriteString("runs ")
		}
		esc(until(t.NextProcessAt))
		b.WriteString("</small>")
	}
	b.WriteString("</div></td>\n        <td data-label=\"Submitted\">")
	if t.EnqueuedAt != nil {
		b.WriteString("<time datetime=\"")
		esc(t.EnqueuedAt.UTC().Format(time.RFC3339))
		b.WriteString("\" title=\"")
		esc(stamp(t.EnqueuedAt))
		b.WriteString("\">")
		esc(ago(t.EnqueuedAt))
		b.WriteString("</time>")
	}
	b.WriteString("</td>\n      </tr>")
}

// writeStatus writes the status line's text for the task the form just
// submitted; queue is "" when the page does not show it.
func writeStatus(b *bytes.Buffer, id, queue string) {
	b.WriteString("Task ")
	if queue == "" {
		b.WriteString(html.EscapeString(id))
	} else {
		b.WriteString("<a href=\"" + html.EscapeString(taskURL(queue, id)) + "\">" + html.EscapeString(id) + "</a>")
	}
	b.WriteString(" submitted.")
}

// writeRefresh writes the noscript Refresh link to self, the page's own
// address (a path on this site: the list page's route is "/").
func writeRefresh(b *bytes.Buffer, self string) {
	b.WriteString("<a href=\"" + html.EscapeString(self) + "\">Refresh</a>")
}
