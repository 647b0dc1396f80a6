// taskstack page: submit without a reload and keep the task list live.
// Without JavaScript the form posts to /tasks and the page still works.
"use strict";

(function () {
  const form = document.getElementById("task-form");
  const rows = document.getElementById("task-rows");
  const table = document.getElementById("tasks");
  const status = document.getElementById("submit-status");
  if (!form || !rows) return;

  const fields = ["arg", "sleep", "queue"];

  function clearErrors() {
    for (const f of fields.concat(["form"])) {
      const el = document.getElementById(f + "-error");
      if (el) el.textContent = "";
      const input = document.getElementById(f);
      if (input) input.removeAttribute("aria-invalid");
    }
  }

  const friendly = {
    "payload.sleep": (m) => "Sleep " + m + ".",
    "payload.arg": (m) => "Argument " + m + ".",
    queue: () => "Choose one of the priorities high, default or low.",
  };

  function showErrors(problem) {
    let first = null;
    for (const e of problem.errors || []) {
      const name = e.field.replace(/^payload\./, "");
      const el = document.getElementById((fields.includes(name) ? name : "form") + "-error");
      const text = (friendly[e.field] || ((m) => m))(e.message);
      if (el) el.textContent = text;
      const input = document.getElementById(name);
      if (input) {
        input.setAttribute("aria-invalid", "true");
        if (!first) first = input;
      }
    }
    if (!problem.errors || problem.errors.length === 0) {
      document.getElementById("form-error").textContent = problem.detail || "The task could not be submitted.";
    }
    if (first) first.focus();
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors();
    status.textContent = "Submitting…";
    const body = {
      type: "demo:echo",
      payload: { arg: form.arg.value, sleep: form.sleep.value.trim() },
      queue: form.queue.value,
    };
    try {
      const res = await fetch("/api/v1/tasks", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const data = await res.json();
      if (!res.ok) {
        status.textContent = "";
        showErrors(data);
        return;
      }
      status.textContent = "Task " + data.id + " submitted.";
      refresh();
    } catch (e) {
      status.textContent = "";
      document.getElementById("form-error").textContent = "The server could not be reached. Try again.";
    }
  });

  function cell(text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    if (text !== undefined) td.textContent = text;
    return td;
  }

  function ago(iso) {
    if (!iso) return "";
    const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
    if (s < 1) return "just now";
    if (s < 60) return s + "s ago";
    if (s < 3600) return Math.floor(s / 60) + "m" + (s % 60) + "s ago";
    return Math.floor(s / 3600) + "h" + Math.floor((s % 3600) / 60) + "m ago";
  }

  function render(page) {
    const out = document.createDocumentFragment();
    if (page.tasks.length === 0) {
      const tr = document.createElement("tr");
      tr.className = "empty";
      const td = cell("No tasks yet. Submit one above.");
      td.colSpan = 5;
      tr.appendChild(td);
      out.appendChild(tr);
    }
    for (const t of page.tasks) {
      const tr = document.createElement("tr");
      tr.dataset.id = t.id;
      tr.dataset.state = t.state;
      const first = cell();
      const a = document.createElement("a");
      a.href = "/tasks/" + encodeURIComponent(t.queue) + "/" + encodeURIComponent(t.id);
      a.textContent = t.id;
      const small = document.createElement("small");
      small.textContent = t.type;
      first.append(a, document.createElement("br"), small);
      tr.appendChild(first);
      tr.appendChild(cell(t.queue));
      const st = cell();
      const span = document.createElement("span");
      span.className = "state state-" + t.state;
      span.textContent = t.state;
      st.appendChild(span);
      tr.appendChild(st);
      const res = cell(undefined, "result");
      if (t.result !== null && t.result !== undefined) {
        res.textContent = t.result;
      } else if (t.last_error) {
        const e = document.createElement("span");
        e.className = "err";
        e.textContent = t.last_error;
        res.appendChild(e);
      }
      tr.appendChild(res);
      tr.appendChild(cell(ago(t.enqueued_at)));
      out.appendChild(tr);
    }
    rows.replaceChildren(out);
  }

  function renderQueues(data) {
    for (const q of data.queues) {
      const tr = document.querySelector('#queues tr[data-queue="' + q.queue + '"]');
      if (!tr) continue;
      const v = [q.pending, q.active, q.scheduled, q.retry, q.archived, q.completed, q.latency_seconds.toFixed(1) + "s"];
      const tds = tr.querySelectorAll("td");
      v.forEach((x, i) => { if (tds[i]) tds[i].textContent = String(x); });
    }
  }

  let busy = false;
  async function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const params = new URLSearchParams(window.location.search);
      params.delete("submitted");
      params.set("page", table.dataset.page || "1");
      params.set("page_size", table.dataset.pageSize || "20");
      const [tasksRes, queuesRes] = await Promise.all([
        fetch("/api/v1/tasks?" + params.toString(), { headers: { Accept: "application/json" } }),
        fetch("/api/v1/queues", { headers: { Accept: "application/json" } }),
      ]);
      if (tasksRes.ok) render(await tasksRes.json());
      if (queuesRes.ok) renderQueues(await queuesRes.json());
    } catch (e) {
      // Keep the last rendering; the next tick tries again.
    } finally {
      busy = false;
    }
  }

  setInterval(refresh, 1000);
})();
