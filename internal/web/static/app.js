// taskstack page: submit without a reload and keep the task list live.
//
// Without JavaScript everything still works: the form posts to /tasks
// (POST/redirect/GET) and the lists are plain server-rendered HTML. This
// script only takes over when it runs.
//
// Accessibility rules it keeps:
//   - the task table is updated in place, row by row and cell by cell, so a
//     focused link keeps its focus and screen readers are not re-read the
//     table every second; the table is not a live region;
//   - the one live region on the index page is #submit-status: it speaks
//     when a task is submitted, refused, or when a task submitted from this
//     page finishes; on the detail page the state badge is the live region.
"use strict";

(function () {
  const POLL_MS = 1000;
  const FINAL = new Set(["completed", "archived"]);

  // ---- small helpers ----------------------------------------------------

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  function taskURL(t) {
    return "/tasks/" + encodeURIComponent(t.queue) + "/" + encodeURIComponent(t.id);
  }

  function apiTaskURL(queue, id) {
    return "/api/v1/queues/" + encodeURIComponent(queue) + "/tasks/" + encodeURIComponent(id);
  }

  // The same wording as page.go's ago.
  function ago(iso) {
    if (!iso) return "";
    const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
    if (s < 1) return "just now";
    if (s < 60) return s + "s ago";
    if (s < 3600) return Math.floor(s / 60) + "m" + (s % 60) + "s ago";
    return Math.floor(s / 3600) + "h" + Math.floor((s % 3600) / 60) + "m ago";
  }

  // The same wording as page.go's until.
  function until(iso) {
    const s = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
    if (s < 1) return "any moment now";
    if (s < 60) return "in " + s + "s";
    if (s < 3600) return "in " + Math.floor(s / 60) + "m" + (s % 60) + "s";
    return "in " + Math.floor(s / 3600) + "h" + Math.floor((s % 3600) / 60) + "m";
  }

  // The same format as page.go's stamp.
  function stamp(iso) {
    if (!iso) return "—";
    return new Date(iso).toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }

  // A session that ended (logged out elsewhere, token revoked, expired):
  // reload, and the server answers with its login page.
  function sessionEnded(res) {
    if (res.status === 401) {
      window.location.reload();
      return true;
    }
    return false;
  }

  async function getJSON(url) {
    const res = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
    if (sessionEnded(res)) {
      const err = new Error("HTTP 401");
      err.status = 401;
      throw err;
    }
    if (!res.ok) {
      const err = new Error("HTTP " + res.status);
      err.status = res.status;
      throw err;
    }
    return res.json();
  }

  // getFresh is getJSON with If-None-Match: it returns null when the answer
  // has not changed since the last call for that URL (304).
  const etags = new Map();
  async function getFresh(url) {
    const prev = etags.get(url);
    const headers = { Accept: "application/json" };
    if (prev) headers["If-None-Match"] = prev.etag;
    const res = await fetch(url, { headers, cache: "no-store" });
    if (sessionEnded(res)) throw Object.assign(new Error("HTTP 401"), { status: 401 });
    if (res.status === 304 && prev) return null;
    if (!res.ok) throw Object.assign(new Error("HTTP " + res.status), { status: res.status });
    const body = await res.json();
    const etag = res.headers.get("ETag");
    if (etag) etags.set(url, { etag });
    return body;
  }

  // live keeps a view up to date: server-sent events from
  // /api/v1/events?<query> (one snapshot per interval per app, shared by
  // every viewer), or, when the browser has no EventSource or the stream
  // can not be opened, polling every second with ETags. window.__live says
  // which one runs (for the browser tests).
  function live(query, onSnapshot, onGone, poll, setLive) {
    let polling = null;
    const handle = { now: () => polling && polling.now() };
    function fallBack() {
      window.__live = "poll";
      if (!polling) polling = poller(poll, POLL_MS);
      polling.now();
    }
    if (typeof EventSource !== "function") {
      fallBack();
      return handle;
    }
    const es = new EventSource("/api/v1/events?" + query);
    let opened = false;
    let failures = 0;
    es.addEventListener("snapshot", (e) => {
      opened = true;
      failures = 0;
      window.__live = "sse";
      setLive(true);
      onSnapshot(JSON.parse(e.data));
    });
    es.addEventListener("unavailable", () => setLive(false));
    es.addEventListener("gone", () => {
      es.close();
      onGone();
    });
    es.onerror = () => {
      setLive(false);
      failures++;
      // Never opened (blocked by a proxy, refused), or keeps failing: poll.
      if (!opened || failures > 3 || es.readyState === EventSource.CLOSED) {
        es.close();
        fallBack();
      }
    };
    // A stream that opens but never delivers (a buffering proxy) also falls back.
    setTimeout(() => {
      if (!opened) {
        es.close();
        fallBack();
      }
    }, 5 * POLL_MS);
    return handle;
  }

  // The "Live" note next to a list: not a live region, it is only a hint
  // for sighted users that the list updates by itself.
  function liveNote() {
    const live = document.getElementById("live");
    if (live) live.hidden = false;
    return function (ok) {
      if (!live) return;
      live.classList.toggle("offline", !ok);
      live.textContent = ok ? "Live" : "Server not answering, retrying…";
    };
  }

  // Poll calls fn every ms milliseconds while the tab is visible, never two
  // at once; now() runs it at once (after any call in flight).
  function poller(fn, ms) {
    let busy = false;
    let again = false;
    let timer = null;
    async function tick() {
      clearTimeout(timer);
      if (busy) {
        again = true;
        return;
      }
      if (document.hidden) return;
      busy = true;
      let next = ms;
      try {
        const r = await fn();
        if (typeof r === "number") next = r;
      } catch (e) {
        // fn reports its own failures; keep polling.
      } finally {
        busy = false;
      }
      if (next > 0) timer = setTimeout(tick, again ? 0 : next);
      again = false;
    }
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) tick();
    });
    timer = setTimeout(tick, ms);
    return { now: tick };
  }

  // ---- index page -------------------------------------------------------

  function indexPage() {
    const form = document.getElementById("task-form");
    const rows = document.getElementById("task-rows");
    const table = document.getElementById("tasks");
    const status = document.getElementById("submit-status");
    const button = document.getElementById("submit");
    const heading = document.getElementById("tasks-title");
    const fields = ["arg", "sleep", "queue"];
    const setLive = liveNote();
    // Tasks submitted from this page, by id: their queue and last state,
    // so their end can be announced once.
    const mine = new Map();
    // What keeps the list live; set at the end (a search is not live).
    let list = { now: () => {} };

    function say(text, bad, link) {
      status.classList.toggle("bad", !!bad);
      status.replaceChildren(text);
      if (link) status.append(" ", link);
    }

    function clearErrors() {
      for (const f of fields.concat(["form"])) {
        const e = document.getElementById(f + "-error");
        if (e) e.textContent = "";
        const input = document.getElementById(f);
        if (input) input.removeAttribute("aria-invalid");
      }
      const summary = document.getElementById("error-summary");
      if (summary) summary.remove();
    }

    // Friendly wording for API field errors: the same as page.go's humanMessage.
    const friendly = {
      "payload.sleep": (m) => "Sleep " + m + ".",
      "payload.arg": (m) => "Argument " + m + ".",
      queue: () => "Choose one of the priorities high, default or low.",
    };

    function showErrors(problem) {
      let first = null;
      const formErrors = [];
      for (const e of problem.errors || []) {
        const name = e.field.replace(/^payload\./, "");
        const text = (friendly[e.field] || ((m) => m))(e.message);
        const input = fields.includes(name) ? document.getElementById(name) : null;
        if (!input) {
          formErrors.push(text);
          continue;
        }
        document.getElementById(name + "-error").textContent = text;
        input.setAttribute("aria-invalid", "true");
        if (!first) first = input;
      }
      if (formErrors.length === 0 && !first) {
        formErrors.push(problem.detail || "The task could not be submitted.");
      }
      document.getElementById("form-error").textContent = formErrors.join(" ");
      say(first ? "The task was not submitted. Check the message next to the field." : "The task was not submitted: " + formErrors.join(" "), true);
      // The field's aria-describedby reads its message when it gets focus.
      if (first) first.focus();
    }

    let submitting = false;
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (submitting) return;
      submitting = true;
      button.setAttribute("aria-disabled", "true");
      clearErrors();
      say("Submitting…");
      const body = {
        type: "demo:echo",
        payload: { arg: form.elements.arg.value, sleep: form.elements.sleep.value.trim() },
        queue: form.elements.queue.value,
      };
      try {
        const res = await fetch("/api/v1/tasks", {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify(body),
        });
        let data = {};
        try {
          data = await res.json();
        } catch (e) {
          // A proxy's HTML error page: fall through with an empty problem.
        }
        if (sessionEnded(res)) return;
        if (!res.ok) {
          if (res.status === 403) {
            say("The task was not submitted: your token may read tasks but not submit them.", true);
          } else if (res.status >= 500 || res.status === 429) {
            say("The task was not submitted: the server is busy or unavailable. Try again in a moment.", true);
          } else {
            showErrors(data);
          }
          return;
        }
        mine.set(data.id, { queue: data.queue, state: data.state });
        say("Task submitted:", false, el("a", { href: taskURL(data), text: data.id }));
        list.now();
      } catch (e) {
        say("The task was not submitted: the server could not be reached. Try again.", true);
      } finally {
        submitting = false;
        button.removeAttribute("aria-disabled");
      }
    });

    // A row's cells, each with a key: a cell is only rebuilt when its key
    // changes, so nothing focusable inside it is replaced needlessly.
    function cells(t) {
      const retried = t.retried ? " retried " + t.retried + "×" : "";
      const hasResult = t.result !== null && t.result !== undefined;
      const next = t.next_process_at && (t.state === "scheduled" || t.state === "retry")
        ? (t.state === "retry" ? "next try " : "runs ") + until(t.next_process_at) : "";
      const result = (hasResult ? "r:" + t.result : t.last_error ? "e:" + t.last_error : "") + "|" + next;
      return [
        {
          label: "Task", key: t.id + "|" + t.type,
          build: () => [el("div", {}, el("a", { href: taskURL(t), text: t.id }), el("small", { text: t.type }))],
        },
        { label: "Queue", key: t.queue, build: () => [t.queue] },
        {
          label: "State", key: t.state + retried,
          build: () => [el("div", {}, el("span", { class: "state state-" + t.state, text: t.state }), retried ? " " : null, retried ? el("small", { text: retried.trim() }) : null)],
        },
        {
          label: "Result", cls: "result", key: result,
          build: () => [el("div", {},
            hasResult ? el("samp", { text: t.result }) : t.last_error ? el("span", { class: "err", text: t.last_error }) : null,
            next ? el("small", { class: "next", text: next }) : null)],
        },
        {
          label: "Submitted", key: t.enqueued_at ? ago(t.enqueued_at) : "",
          build: () => t.enqueued_at ? [el("time", { datetime: t.enqueued_at, title: stamp(t.enqueued_at), text: ago(t.enqueued_at) })] : [],
        },
      ];
    }

    function updateRow(tr, t) {
      tr.dataset.state = t.state;
      tr.classList.toggle("mine", mine.has(t.id) || tr.classList.contains("mine"));
      const spec = cells(t);
      spec.forEach((c, i) => {
        let td = tr.children[i];
        if (!td) {
          td = el("td", { "data-label": c.label, class: c.cls });
          tr.append(td);
        }
        if (td.dataset.key !== c.key) {
          td.dataset.key = c.key;
          td.replaceChildren(...c.build());
        }
      });
    }

    function rowFor(t) {
      const tr = el("tr", { "data-id": t.id, "data-queue": t.queue });
      updateRow(tr, t);
      return tr;
    }

    function emptyRow() {
      const p = new URLSearchParams(window.location.search);
      const filtered = p.get("state") || p.get("queue");
      const td = el("td", { colspan: "5", text: filtered ? "No tasks match this filter." : "No tasks yet. Submit one above." });
      return el("tr", { class: "empty" }, td);
    }

    function render(page) {
      const active = document.activeElement;
      const hadFocus = rows.contains(active) ? active : null;

      const existing = new Map();
      for (const tr of rows.querySelectorAll("tr[data-id]")) existing.set(tr.dataset.id, tr);
      const want = page.tasks.map((t) => {
        const tr = existing.get(t.id);
        existing.delete(t.id);
        if (tr) {
          // Seed the key of server-rendered cells so they are not rebuilt.
          updateRow(tr, t);
          return tr;
        }
        return rowFor(t);
      });
      for (const tr of existing.values()) tr.remove();
      const empty = rows.querySelector("tr.empty");
      if (want.length === 0) {
        if (!empty) rows.append(emptyRow());
      } else if (empty) {
        empty.remove();
      }
      // Put rows in order, moving as few as possible (new tasks go on top).
      let cursor = rows.firstElementChild;
      for (const tr of want) {
        if (tr === cursor) {
          cursor = cursor.nextElementSibling;
          continue;
        }
        rows.insertBefore(tr, cursor);
      }

      if (hadFocus && document.activeElement !== hadFocus) {
        // The focused row moved or left this page: keep the keyboard user
        // where they were, or at the list's heading.
        if (rows.contains(hadFocus)) hadFocus.focus();
        else heading.focus();
      }
      renderPager(page);
    }

    function renderPager(page) {
      const summary = document.getElementById("pager-summary");
      if (summary) summary.textContent = "Page " + page.page + " · " + page.total + (page.total === 1 ? " task" : " tasks");
      const link = (p) => {
        const v = new URLSearchParams(window.location.search);
        v.delete("submitted");
        v.set("page", String(p));
        return "/?" + v.toString();
      };
      const prev = document.getElementById("prev");
      const next = document.getElementById("next");
      if (prev) {
        prev.hidden = page.page <= 1;
        if (!prev.hidden) prev.href = link(page.page - 1);
      }
      if (next) {
        next.hidden = !(page.page * page.page_size < page.total && page.page < 100);
        if (!next.hidden) next.href = link(page.page + 1);
      }
    }

    function renderQueues(data) {
      for (const q of data.queues) {
        const tr = document.querySelector('#queues tr[data-queue="' + CSS.escape(q.queue) + '"]');
        if (!tr) continue;
        const v = [q.pending, q.active, q.scheduled, q.retry, q.archived, q.completed, q.latency_seconds.toFixed(1) + "s"];
        const tds = tr.querySelectorAll("td");
        v.forEach((x, i) => {
          if (tds[i] && tds[i].textContent !== String(x)) tds[i].textContent = String(x);
        });
      }
    }

    // Announce, once, the end of each task submitted from this page.
    async function announce(page) {
      const byID = new Map(page.tasks.map((t) => [t.id, t]));
      for (const [id, m] of mine) {
        if (FINAL.has(m.state) || m.state === "retry") continue;
        let t = byID.get(id);
        if (!t) {
          try {
            t = await getJSON(apiTaskURL(m.queue, id));
          } catch (e) {
            continue;
          }
        }
        if (t.state === m.state) continue;
        m.state = t.state;
        const link = el("a", { href: taskURL(t), text: id });
        if (t.state === "completed") say("Task completed: " + (t.result || "(no result)") + " —", false, link);
        else if (t.state === "archived") say("Task failed: " + (t.last_error || "no error recorded") + " —", true, link);
        else if (t.state === "retry") say("Task failed and will be retried: " + (t.last_error || "") + " —", true, link);
      }
    }

    function listQuery() {
      const params = new URLSearchParams(window.location.search);
      params.delete("submitted");
      params.set("page", table.dataset.page || "1");
      params.set("page_size", table.dataset.pageSize || "20");
      return params;
    }
    async function show(page, queues) {
      render(page);
      if (queues) renderQueues(queues);
      await announce(page);
    }
    const params = listQuery();
    // A search reads up to a thousand tasks: it is not kept live (the
    // no-script refresh hint applies).
    if (table.dataset.search) return;
    list = live(
      params.toString(),
      (view) => show(view.page, { queues: view.queues }),
      () => {},
      async () => {
        try {
          const [page, queues] = await Promise.all([getFresh("/api/v1/tasks?" + params.toString()), getFresh("/api/v1/queues")]);
          if (page) await show(page, queues);
          else if (queues) renderQueues(queues);
          setLive(true);
        } catch (e) {
          // Keep the last rendering; the next tick tries again.
          setLive(false);
        }
      },
      setLive,
    );
    // After this page's own submit the stream shows it within a second; a
    // poller (the fallback) is asked at once.
  }

  // ---- detail page ------------------------------------------------------

  // The same wording as page.go's eventText.
  function eventText(e) {
    const n = e.attempt;
    switch (e.event) {
      case "enqueued": return "Submitted";
      case "scheduled": return "Due";
      case "attempt_started": return "Attempt " + n + " started";
      case "attempt_succeeded": return "Attempt " + n + " succeeded";
      case "attempt_failed": return "Attempt " + n + " failed";
      case "running": return "Attempt " + n + " running";
      case "retry_scheduled": return "Attempt " + n + " due";
      case "completed": return "Completed";
      case "archived": return "Archived: failed for good";
    }
    return e.event;
  }

  // The same format as page.go's humanSeconds (near enough).
  function seconds(f) {
    if (f < 0.001) return "<1ms";
    if (f < 1) return Math.round(f * 1000) + "ms";
    if (f < 60) return (Math.round(f * 100) / 100) + "s";
    return Math.floor(f / 60) + "m" + Math.round(f % 60) + "s";
  }

  function timelineItems(events) {
    if (!events || events.length === 0) return [el("li", { text: "Nothing recorded yet." })];
    return events.map((e) =>
      el("li", { class: "event event-" + e.event, "data-event": e.event },
        e.at ? el("time", { datetime: e.at, text: stamp(e.at) }) : el("time", { text: "now" }),
        " ",
        el("span", { class: "what", text: eventText(e) }),
        e.error ? " " : null,
        e.error ? el("samp", { class: "err", text: e.error }) : null));
  }

  function attemptRows(attempts) {
    return (attempts || []).map((a) =>
      el("tr", {},
        el("th", { scope: "row", text: String(a.attempt) }),
        el("td", {}, el("time", { datetime: a.started_at, text: stamp(a.started_at) })),
        el("td", { text: seconds(a.duration_seconds) }),
        el("td", {}, a.error ? el("samp", { class: "err", text: a.error }) : "succeeded"),
        el("td", { text: a.worker || "—" })));
  }

  function detailPage(card) {
    const setLive = liveNote();
    const set = (id, text, build) => {
      const e = document.getElementById("detail-" + id);
      if (!e || e.dataset.key === text) return;
      e.dataset.key = text;
      e.replaceChildren(...(build ? build() : [text]));
    };
    let done = false;
    let finishedAt = 0;
    function gone() {
      done = true;
      setLive(false);
      document.getElementById("live").textContent = "This task no longer exists (it was deleted or its retention ended).";
    }
    function show(t) {
      if (done) return;
      const state = document.getElementById("detail-state");
      if (state.textContent !== t.state) {
        state.className = "state state-" + t.state;
        state.textContent = t.state;
      }
      card.dataset.state = t.state;
      const hasResult = t.result !== null && t.result !== undefined;
      set("result", hasResult ? "r:" + t.result : "", () => (hasResult ? [el("samp", { text: t.result })] : ["—"]));
      set("error", t.last_error || "—");
      document.getElementById("detail-error").classList.toggle("err", !!t.last_error);
      set("retried", t.retried + " of " + t.max_retry);
      set("retries_left", t.retries_left === null || t.retries_left === undefined ? "—" : String(t.retries_left));
      const timeline = document.getElementById("timeline");
      const tkey = JSON.stringify(t.timeline || []);
      if (timeline && timeline.dataset.key !== tkey) {
        timeline.dataset.key = tkey;
        timeline.replaceChildren(...timelineItems(t.timeline));
      }
      const rows = document.getElementById("attempt-rows");
      const akey = JSON.stringify(t.attempts || []);
      if (rows && rows.dataset.key !== akey) {
        rows.dataset.key = akey;
        rows.replaceChildren(...attemptRows(t.attempts));
        document.getElementById("attempts-section").hidden = !(t.attempts && t.attempts.length);
      }
      for (const k of ["enqueued_at", "next_process_at", "last_failed_at", "completed_at"]) set(k, stamp(t[k]));
      // Finished: nothing more will change, but for the last attempt's
      // record, which its worker writes a moment after the task ends.
      if (FINAL.has(t.state)) {
        finishedAt = finishedAt || Date.now();
        const lastRecorded = (t.attempts || []).some((a) => a.attempt === t.retried + 1 || (t.state === "archived" && a.attempt === t.retried));
        if (lastRecorded || Date.now() - finishedAt > 3000) {
          done = true;
          document.getElementById("live").hidden = true;
        }
      }
    }
    const query = new URLSearchParams({ view: "task", queue: card.dataset.queue, id: card.dataset.id });
    live(query.toString(), show, gone, async () => {
      if (done) return 0;
      try {
        const t = await getFresh(card.dataset.src);
        setLive(true);
        if (t) show(t);
      } catch (e) {
        if (e.status === 404) {
          gone();
          return 0;
        }
        setLive(false);
      }
      return done ? 0 : POLL_MS;
    }, setLive);
  }

  const card = document.getElementById("task-detail");
  if (document.getElementById("task-form") && document.getElementById("task-rows")) indexPage();
  else if (card && !FINAL.has(card.dataset.state)) detailPage(card);
})();
