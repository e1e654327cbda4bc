// lockgate's web UI: the theme toggle, local times, confirmations, and the live parts of the
// pipeline page (graph and grid recoloured from the grid API), the run page (states
// refreshed while it runs) and the log page (a live tail over server-sent events).
// Plain ES2020; text from the server is inserted with textContent, never as HTML.
"use strict";

const THEME_KEY = "lockgate-theme";
const POLL_MS = 2000;
const ACTIVE = new Set(["queued", "running"]);

// -- theme ------------------------------------------------------------------------------------
function currentTheme() {
  const set = document.documentElement.getAttribute("data-theme");
  if (set === "light" || set === "dark") return set;
  return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function setupTheme() {
  const button = document.getElementById("theme-toggle");
  if (!button) return;
  button.addEventListener("click", () => {
    const next = currentTheme() === "dark" ? "light" : "dark";
    document.documentElement.setAttribute("data-theme", next);
    try {
      window.localStorage.setItem(THEME_KEY, next);
    } catch (e) {
      /* not kept: fine for this page */
    }
  });
}

// -- times ------------------------------------------------------------------------------------
const absolute = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
});
// a time on a page: to the second (runs and tasks last seconds), the year only when not this one
const stamp = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
});
const shortDate = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
});
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

function moment(date) {
  return date.getFullYear() === new Date().getFullYear() ? stamp.format(date) : absolute.format(date);
}

function ago(date) {
  const seconds = (date.getTime() - Date.now()) / 1000;
  const abs = Math.abs(seconds);
  if (abs < 45) return seconds < 0 ? "just now" : "in a few seconds";
  if (abs < 3600) return relative.format(Math.round(seconds / 60), "minute");
  if (abs < 86400) return relative.format(Math.round(seconds / 3600), "hour");
  if (abs < 86400 * 30) return relative.format(Math.round(seconds / 86400), "day");
  return shortDate.format(date);
}

function localizeTimes(root) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const date = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(date.getTime())) continue;
    el.title = absolute.format(date);
    if (el.classList.contains("due") && date.getTime() < Date.now()) {
      el.textContent = "due now";
      el.title = "due since " + absolute.format(date) + " (is a scheduler running?)";
    } else {
      el.textContent = el.classList.contains("ago") ? ago(date) : moment(date);
    }
  }
}

// -- forms ------------------------------------------------------------------------------------
function setupConfirm() {
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    }
  });
}

// -- live helpers -----------------------------------------------------------------------------
function setState(el, state) {
  if (!el || el.getAttribute("data-state") === state) return false;
  for (const name of Array.from(el.classList)) {
    if (name.startsWith("st-")) el.classList.remove(name);
  }
  el.classList.add("st-" + state);
  el.setAttribute("data-state", state);
  const hidden = el.querySelector(".sr");
  if (hidden) hidden.textContent = state;
  return true;
}

function liveStatus(text, ok) {
  const el = document.getElementById("live-status");
  if (!el) return;
  el.textContent = text;
  el.classList.toggle("off", !ok);
}

async function getJSON(url) {
  const response = await fetch(url, {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  if (response.status === 401) {
    window.location.assign("/login?next=" + encodeURIComponent(location.pathname));
    return null;
  }
  if (!response.ok) throw new Error(url + ": " + response.status);
  return response.json();
}

// Replace the elements with these ids by their new version from a fresh copy of this page.
async function refreshParts(ids) {
  const response = await fetch(location.pathname, {
    credentials: "same-origin",
    headers: { Accept: "text/html" },
  });
  if (!response.ok) return false;
  const doc = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const id of ids) {
    const fresh = doc.getElementById(id);
    const old = document.getElementById(id);
    if (fresh && old) old.replaceWith(document.importNode(fresh, true));
  }
  localizeTimes(document);
  return true;
}

function every(ms, tick) {
  let timer = null;
  let busy = false;
  const run = async () => {
    if (document.hidden || busy) return;
    busy = true;
    try {
      if ((await tick()) === false) {
        window.clearInterval(timer);
      }
    } catch (e) {
      liveStatus("offline", false);
    } finally {
      busy = false;
    }
  };
  timer = window.setInterval(run, ms);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) run();
  });
}

// -- the pipeline page ------------------------------------------------------------------------
function setupPipeline(body) {
  const id = body.dataset.pipeline;
  const limit = body.dataset.gridLimit || "25";
  const url = "/api/v1/pipelines/" + encodeURIComponent(id) + "/grid?limit=" + limit;
  every(POLL_MS, async () => {
    const grid = await getJSON(url);
    if (!grid) return false;
    liveStatus("live", true);
    const shown = new Set(
      Array.from(document.querySelectorAll("#run-grid [data-testid=grid-run]"), (a) => a.dataset.run),
    );
    const rows = document.querySelectorAll("#run-grid tbody tr").length;
    const changed = grid.runs.some((row) => !shown.has(row.run.id)) ||
      (grid.runs.length > 0 && rows !== grid.tasks.length);
    if (changed) {
      await refreshParts(["run-grid-wrap", "graph-card"]);
      return true;
    }
    const byRun = new Map(grid.runs.map((row) => [row.run.id, row]));
    for (const head of document.querySelectorAll("#run-grid [data-testid=grid-run]")) {
      const row = byRun.get(head.dataset.run);
      if (row) setState(head, row.run.state);
    }
    for (const cell of document.querySelectorAll("#run-grid a.cell")) {
      const row = byRun.get(cell.dataset.run);
      if (row) setState(cell, row.tasks[cell.dataset.task] || "none");
    }
    const latest = grid.runs[0];
    if (latest) {
      for (const node of document.querySelectorAll("#task-graph [data-task]")) {
        setState(node, latest.tasks[node.dataset.task] || "none");
      }
    }
    return true;
  });
}

// -- the run page -----------------------------------------------------------------------------
function runSignature(run) {
  return JSON.stringify([
    run.state,
    run.cancel_requested,
    run.tasks.map((t) => [t.id, t.state, t.attempts]),
    run.attempts.map((a) => [a.task, a.attempt, a.state]),
  ]);
}

function setupRun(body) {
  if (body.dataset.live !== "on") return;
  const url = "/api/v1/runs/" + encodeURIComponent(body.dataset.run);
  let seen = null;
  let ticks = 0;
  every(POLL_MS, async () => {
    const run = await getJSON(url);
    if (!run) return false;
    ticks += 1;
    const signature = runSignature(run);
    const shownState = document.querySelector("[data-testid=run-state]");
    const stale = seen === null
      ? shownState && shownState.getAttribute("data-state") !== run.state
      : signature !== seen;
    seen = signature;
    const ended = !ACTIVE.has(run.state);
    // running bars grow: redraw every 10 s even when no state changed
    if (stale || ended || ticks % 5 === 0) {
      await refreshParts(["run-live"]);
    } else {
      for (const t of run.tasks) {
        const row = document.querySelector('#task-' + CSS.escape(t.id));
        if (row) setState(row.querySelector(".badge"), t.state);
      }
    }
    if (ended) {
      liveStatus("ended", false);
      return false;
    }
    liveStatus("live", true);
    return true;
  });
}

// -- the log page -----------------------------------------------------------------------------
function setupLog(body) {
  const pane = document.getElementById("log");
  const status = document.getElementById("log-status");
  const follow = document.getElementById("log-follow");
  const wrap = document.getElementById("log-wrap");
  if (!pane) return;
  wrap.addEventListener("change", () => pane.classList.toggle("wrap", wrap.checked));
  const scroll = () => {
    if (follow.checked) pane.scrollTop = pane.scrollHeight;
  };
  scroll();
  if (body.dataset.complete === "yes") return;
  let offset = Number(body.dataset.offset || "0");
  let source = null;
  const show = (text, cls) => {
    status.textContent = text;
    status.className = "log-status " + (cls || "");
  };
  const open = () => {
    source = new EventSource(body.dataset.stream + "?offset=" + offset);
    show("live", "on");
    source.addEventListener("log", (event) => {
      const data = JSON.parse(event.data);
      const empty = document.getElementById("log-empty");
      if (empty) empty.remove();
      pane.appendChild(document.createTextNode(data.text));
      offset = data.next_offset;
      scroll();
    });
    source.addEventListener("end", () => {
      source.close();
      show("complete", "");
      refreshParts(["log-head"]);
    });
    source.onerror = () => {
      // reconnect from where we are (the browser's own retry would start at the first offset)
      source.close();
      show("reconnecting…", "off");
      window.setTimeout(open, POLL_MS);
    };
  };
  open();
}

// -- start ------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  setupTheme();
  setupConfirm();
  localizeTimes(document);
  const body = document.body;
  const page = body.dataset.page;
  if (page === "pipeline") setupPipeline(body);
  else if (page === "run") setupRun(body);
  else if (page === "log") setupLog(body);
  window.setInterval(() => {
    if (!document.hidden) localizeTimes(document);
  }, 30000);
});
