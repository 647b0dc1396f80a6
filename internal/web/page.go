package web

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"taskstack/internal/guard"
	"taskstack/internal/store"
	"taskstack/internal/tasks"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

type pageRenderer struct {
	tmpl   *template.Template
	marks  [holes]string
	frames *frameCache
	recent *recentTasks
	bufs   sync.Pool // of *bytes.Buffer, to put pages together in
}

func newPageRenderer() (*pageRenderer, error) {
	t, err := template.New("").Funcs(template.FuncMap{
		"ago":       ago,
		"until":     until,
		"stamp":     stamp,
		"at":        func(t time.Time) *time.Time { return &t },
		"seconds":   func(f float64) string { return humanSeconds(f) },
		"eventText": eventText,
		"iso": func(t *time.Time) string {
			if t == nil {
				return ""
			}
			return t.UTC().Format(time.RFC3339)
		},
		"deref": func(s *string) string {
			if s == nil {
				return ""
			}
			return *s
		},
		"payload": prettyJSON,
		"taskURL": taskURL,
		"queues":  tasks.Queues,
		"states":  func() []string { return listStates },
	}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("parse templates: %w", err)
	}
	marks, err := newHoleMarks()
	if err != nil {
		return nil, err
	}
	return &pageRenderer{tmpl: t, marks: marks, frames: newFrameCache(256), recent: newRecentTasks(5*time.Second, 4096)}, nil
}

func (p *pageRenderer) render(w http.ResponseWriter, status int, name string, data any) error {
	var buf bytes.Buffer
	if err := p.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// taskURL is a task's page.
func taskURL(queue, id string) string {
	return "/tasks/" + url.PathEscape(queue) + "/" + url.PathEscape(id)
}

func ago(t *time.Time) string {
	if t == nil {
		return ""
	}
	// The same wording as app.js, which takes over once the page is live.
	s := int(time.Since(*t).Round(time.Second) / time.Second)
	switch {
	case s < 1:
		return "just now"
	case s < 60:
		return fmt.Sprintf("%ds ago", s)
	case s < 3600:
		return fmt.Sprintf("%dm%ds ago", s/60, s%60)
	}
	return fmt.Sprintf("%dh%dm ago", s/3600, s%3600/60)
}

// until words a time to come, as app.js does.
func until(t *time.Time) string {
	if t == nil {
		return ""
	}
	s := int(time.Until(*t).Round(time.Second) / time.Second)
	switch {
	case s < 1:
		return "any moment now"
	case s < 60:
		return fmt.Sprintf("in %ds", s)
	case s < 3600:
		return fmt.Sprintf("in %dm%ds", s/60, s%60)
	}
	return fmt.Sprintf("in %dh%dm", s/3600, s%3600/60)
}

func stamp(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// maxShownPayload bounds the payload a task page shows (the API answer
// has all of it).
const maxShownPayload = 8 << 10

// prettyJSON indents a payload for a person, cut after maxShownPayload
// bytes (at a character boundary) with a note of what was left out.
func prettyJSON(raw json.RawMessage) string {
	var buf bytes.Buffer
	out := string(raw)
	if err := json.Indent(&buf, raw, "", "  "); err == nil {
		out = buf.String()
	}
	if len(out) <= maxShownPayload {
		return out
	}
	cut := maxShownPayload
	for cut > 0 && !utf8.RuneStart(out[cut]) {
		cut--
	}
	return out[:cut] + fmt.Sprintf("\n… %d more bytes: see the task as JSON", len(out)-cut)
}

// ui renders errors as a page a person can read.
func (s *Server) ui(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.errorPage(w, r, s.report(r, err))
		}
	})
}

// errorPage renders p for a person; server faults never show their text.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, p *problem) {
	if p.retryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(p.retryAfter))
	}
	msg := p.Detail
	if p.Status >= 500 {
		msg = "Something went wrong on our side. Please try again in a moment."
		if p.Status == http.StatusServiceUnavailable {
			msg = "The task store is unavailable right now. Please try again in a few seconds."
		}
	}
	_ = s.page.render(w, p.Status, "error.html", map[string]any{
		"Status": p.Status, "Title": p.Title, "Message": msg, "Links": s.navLinks(r),
	})
}

// parseForm reads a form body of at most MaxBodyBytes (413 over it).
func (s *Server) parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return err
		}
		return newProblem(http.StatusBadRequest, "The form could not be read.")
	}
	return nil
}

// static serves the page's CSS and script, and never a directory listing.
func (s *Server) static() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			s.errorPage(w, r, newProblem(http.StatusNotFound, "There is no page at this address."))
			return
		}
		files.ServeHTTP(w, r)
	})
}

type navLinks struct {
	Monitor string
	Grafana string
	// User is who is logged in ("" when nobody is asked); Logout offers
	// to end a session.
	User   string
	Logout bool
}

func (s *Server) navLinks(r *http.Request) navLinks {
	n := navLinks{Monitor: s.o.MonitorURL, Grafana: s.o.GrafanaURL}
	if id := identity(r.Context()); id.Via != "" && id.Via != guard.ViaOpen {
		n.User, n.Logout = id.Name, id.Via == guard.ViaSession
	}
	return n
}

// formValues is what the person typed, echoed back with field errors.
type formValues struct {
	Arg   string
	Sleep string
	Queue string
}

type indexData struct {
	Title  string
	Links  navLinks
	Form   formValues
	Errors map[string]string
	// ErrorList is Errors in the order of the form's fields, for the
	// summary above the form; FirstError is the field that gets focus.
	ErrorList  []fieldMessage
	FirstError string
	Filter     listQuery
	Filtered   bool
	Page       taskPage
	Queues     []queueJSON
	// Search is set when the list is a search (type, q, since, until).
	Search   *searchPage
	Types    []string
	MaxScan  int
	Schedule []scheduleJSON
	Self     string
	Prev     string
	Next     string
	// Status, Refresh and Rows are the holes of the page's frame
	// (pagecache.go): the status line, the noscript Refresh link and the
	// task rows.
	Status, Refresh, Rows template.HTML
}

type fieldMessage struct {
	Field   string
	Message string
}

// formOrder is the order of the form's controls; "type" is the form itself.
var formOrder = []string{"arg", "sleep", "queue", "type"}

func (s *Server) index(w http.ResponseWriter, r *http.Request) error {
	return s.renderIndex(w, r, http.StatusOK, formValues{Sleep: "10s", Queue: tasks.QueueDefault}, nil)
}

func (s *Server) renderIndex(w http.ResponseWriter, r *http.Request, status int, form formValues, errs map[string]string) error {
	q, err := parseListQuery(r.URL.Query())
	if err == nil {
		err = s.checkType(q)
	}
	if err != nil {
		q = listQuery{States: listStates, Queues: tasks.Queues(), Page: 1, PageSize: store.DefaultPageSize}
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	data := indexData{
		Title: "Tasks", Links: s.navLinks(r), Form: form, Errors: errs,
		Filter: q, Filtered: r.URL.Query().Get("state") != "" || r.URL.Query().Get("queue") != "" || q.searching(),
		Self: r.URL.RequestURI(), Types: s.cat.Types(), MaxScan: store.MaxScan,
	}
	// The schedule section is not worth failing the page for.
	sched, err := s.scheduleSnapshot(ctx)
	if err != nil {
		sched = nil
	} else {
		data.Schedule = sched.val.(map[string]any)["entries"].([]scheduleJSON)
	}
	if q.searching() {
		return s.renderSearch(ctx, w, status, q, data)
	}
	list, err := s.listSnapshot(ctx, q)
	if err != nil {
		return err
	}
	view := list.val.(listView)
	data.Page, data.Queues = view.Page, view.Queues
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		data.Self = "/" // the form's answer: refresh the list, not the POST
	}
	data.Prev, data.Next = pageLinks(r.URL.Query(), q, view.Page.Total)
	req := pageRequest{self: data.Self, submitted: r.URL.Query().Get("submitted"), pageSize: q.PageSize}
	if req.submitted != "" && q.Page == 1 && !slices.ContainsFunc(view.Page.Tasks, func(t taskJSON) bool { return t.ID == req.submitted }) {
		req.found = s.submittedTask(ctx, req.submitted)
	}
	if len(errs) == 0 && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		// The list page as most requests see it: from its frame.
		f, err := s.page.frames.get(frameKey(r.URL.Query(), data.Links), list, sched, func() (*pageFrame, error) {
			return s.page.frame(data, list, sched)
		})
		if err != nil {
			return err
		}
		return s.page.write(w, status, f, req)
	}
	if len(errs) > 0 {
		data.Title = "Error: task not submitted"
		data.ErrorList, data.FirstError = errorList(errs)
	}
	f, err := s.page.frame(data, list, sched)
	if err != nil {
		return err
	}
	return s.page.write(w, status, f, req)
}

// renderSearch writes the page of a search: its matches, with a link to
// the next ones when it stopped at its bound.
func (s *Server) renderSearch(ctx context.Context, w http.ResponseWriter, status int, q listQuery, data indexData) error {
	snap, err := s.searchSnapshot(ctx, q)
	if err != nil {
		return err
	}
	res := snap.val.(searchPage)
	qs, err := s.queuesSnapshot(ctx)
	if err != nil {
		return err
	}
	data.Search, data.Page = &res, taskPage{Tasks: res.Tasks, PageSize: q.PageSize}
	data.Queues = qs.val.(map[string]any)["queues"].([]queueJSON)
	if res.Cursor != "" {
		v := q.values()
		v.Set("cursor", res.Cursor)
		data.Next = "/?" + v.Encode()
	}
	f, err := s.page.frame(data, nil, nil)
	if err != nil {
		return err
	}
	return s.page.write(w, status, f, pageRequest{self: data.Self})
}

// pageLinks are the list page's links to the previous and next pages
// (empty when there is none), keeping the URL's filter.
func pageLinks(query url.Values, q listQuery, total int) (prev, next string) {
	link := func(n int) string {
		v := maps.Clone(query)
		v.Del("submitted")
		v.Set("page", fmt.Sprint(n))
		return "/?" + v.Encode()
	}
	if q.Page > 1 {
		prev = link(q.Page - 1)
	}
	if hasNext(q, total) {
		next = link(q.Page + 1)
	}
	return prev, next
}

// submittedTask is the task the form just submitted, which the list's
// snapshot may not show yet: as this replica enqueued it, or read from
// Redis (nil when it can't be found).
func (s *Server) submittedTask(ctx context.Context, id string) *taskJSON {
	if t, ok := s.page.recent.get(id); ok {
		return &t
	}
	if t, err := s.store.Find(ctx, id); err == nil {
		tj := toTaskJSON(t)
		return &tj
	}
	return nil
}

// errorList orders a refused form's errors for the summary: the form's
// controls in their order, then errors not about one control (an unknown
// type, a malformed payload), which point at the form as a whole. first
// is the control to focus.
func errorList(errs map[string]string) (list []fieldMessage, first string) {
	for _, f := range formOrder {
		if msg, ok := errs[f]; ok && f != "type" {
			list = append(list, fieldMessage{Field: f, Message: msg})
		}
	}
	if len(list) > 0 {
		first = list[0].Field
	}
	for _, f := range slices.Sorted(maps.Keys(errs)) {
		if f == "type" || !slices.Contains(formOrder, f) {
			list = append(list, fieldMessage{Field: "task-form", Message: errs[f]})
		}
	}
	return list, first
}

// submitForm is the no-JavaScript path: validate with the API's rules, then
// redirect (POST/redirect/GET) or show the form again with field errors.
func (s *Server) submitForm(w http.ResponseWriter, r *http.Request) error {
	if err := s.parseForm(w, r); err != nil {
		return err
	}
	if err := s.limitSubmit(r, 1); err != nil {
		return err
	}
	form := formValues{
		Arg:   r.PostFormValue("arg"),
		Sleep: strings.TrimSpace(r.PostFormValue("sleep")),
		Queue: r.PostFormValue("queue"),
	}
	payload, _ := json.Marshal(tasks.EchoPayload{Arg: form.Arg, Sleep: form.Sleep})
	p, err := s.cat.Prepare(tasks.Request{Type: tasks.TypeEcho, Payload: payload, Queue: form.Queue})
	note := auditNote(r.Context())
	note.TaskType, note.Queue, note.PayloadBytes = tasks.TypeEcho, p.Queue, len(payload)
	var e store.Enqueued
	if err == nil {
		ctx, cancel := s.requestContext(r)
		defer cancel()
		e, err = s.store.Enqueue(ctx, p)
	}
	note.TaskID = e.ID
	if err != nil {
		note.Detail = err.Error()
	}
	s.countEnqueue(tasks.TypeEcho, p.Queue, err)
	if err != nil {
		pr := classify(err)
		if pr.Status != http.StatusUnprocessableEntity {
			return err
		}
		errs := map[string]string{}
		for _, f := range pr.Errors {
			errs[formField(f.Field)] = humanMessage(f)
		}
		return s.renderIndex(w, r, http.StatusUnprocessableEntity, form, errs)
	}
	s.changed(e.Queue, e.ID)
	s.page.recent.add(submittedJSON(e, p, time.Now()))
	http.Redirect(w, r, "/?submitted="+url.QueryEscape(e.ID), http.StatusSeeOther)
	return nil
}

// formField maps an API field name to the form control it came from.
func formField(apiField string) string {
	return strings.TrimPrefix(apiField, "payload.")
}

// humanMessage words a field error for a person rather than an API client.
func humanMessage(f tasks.FieldError) string {
	switch f.Field {
	case "payload.sleep":
		return "Sleep " + f.Message + "."
	case "payload.arg":
		return "Argument " + f.Message + "."
	case "queue":
		return "Choose one of the priorities high, default or low."
	}
	return f.Message
}

func (s *Server) taskPage(w http.ResponseWriter, r *http.Request) error {
	queue, id := r.PathValue("queue"), r.PathValue("id")
	if !tasks.KnownQueue(queue) {
		return newProblem(http.StatusNotFound, "There is no such queue.")
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	snap, err := s.taskSnapshot(ctx, queue, id)
	if errors.Is(err, store.ErrNotFound) {
		return newProblem(http.StatusNotFound, "This task does not exist, or it finished longer ago than it is kept.")
	}
	if err != nil {
		return err
	}
	return s.page.render(w, http.StatusOK, "task.html", map[string]any{"Links": s.navLinks(r), "Task": snap.val.(taskDetail)})
}

// humanSeconds words a duration in seconds: 12ms, 1.5s, 2m3s.
func humanSeconds(f float64) string {
	d := time.Duration(f * float64(time.Second))
	switch {
	case d < time.Millisecond:
		return "<1ms"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// eventText words a timeline event for a person (app.js words it the same).
func eventText(e timelineEvent) string {
	n := fmt.Sprint(e.Attempt)
	switch e.Event {
	case eventEnqueued:
		return "Submitted"
	case eventScheduled:
		return "Due"
	case eventAttemptStarted:
		return "Attempt " + n + " started"
	case eventAttemptSucceeded:
		return "Attempt " + n + " succeeded"
	case eventAttemptFailed:
		return "Attempt " + n + " failed"
	case eventRunning:
		return "Attempt " + n + " running"
	case eventRetryScheduled:
		return "Attempt " + n + " due"
	case eventCompleted:
		return "Completed"
	case eventArchived:
		return "Archived: failed for good"
	}
	return e.Event
}
