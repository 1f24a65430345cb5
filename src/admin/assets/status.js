// Status page of the Gemini key rotator. Plain browser JavaScript, no build step: it logs in with
// the admin token (kept in sessionStorage, sent as a Bearer header, never put in a URL), reads
// the admin API, and draws the keys, the recent errors and a uPlot chart of the traffic.
// Every value from the server is inserted as text (textContent), never as HTML.
"use strict";

(() => {
  const TOKEN_KEY = "gemini-key-rotator.admin-token";
  const REFRESH_MS = 10_000;
  const HISTORY_REFRESH_MS = 60_000;

  const $ = (id) => document.getElementById(id);
  const els = {
    login: $("login"),
    loginForm: $("login-form"),
    token: $("token"),
    loginError: $("login-error"),
    dashboard: $("dashboard"),
    logout: $("logout"),
    summary: $("summary"),
    notice: $("notice"),
    keysBody: document.querySelector("#keys tbody"),
    keysEmpty: $("keys-empty"),
    errorsBody: document.querySelector("#errors tbody"),
    errorsEmpty: $("errors-empty"),
    hours: $("hours"),
    chart: $("chart"),
    addForm: $("add-form"),
    addKeys: $("add-keys"),
    addLabel: $("add-label"),
    clearAll: $("clear-all"),
    refresh: $("refresh"),
  };

  /** Server clock minus ours, so countdowns agree with the rotator's idea of "now". */
  let clockSkewMs = 0;
  let refreshTimer;
  let historyTimer;
  let chart;
  let refreshSoon;

  class Unauthorized extends Error {}

  // ---- API -------------------------------------------------------------------------------

  async function api(method, path, body) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) throw new Unauthorized("not logged in");
    const response = await fetch(new URL(path, location.href), {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      cache: "no-store",
      credentials: "omit",
    });
    const text = await response.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // Not JSON: reported below by status.
    }
    if (response.status === 401) {
      logout("The admin token was not accepted. Log in again.");
      throw new Unauthorized("unauthorized");
    }
    if (!response.ok) {
      const message = json && json.error && json.error.message;
      throw new Error(message || `HTTP ${response.status} from ${path}`);
    }
    return json;
  }

  // ---- Formatting ------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function serverNow() {
    return Date.now() + clockSkewMs;
  }

  function formatRemaining(ms) {
    if (ms <= 0) return "now";
    const s = Math.ceil(ms / 1000);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return h < 48 ? `${h} h ${m} min` : `${Math.floor(h / 24)} days`;
  }

  function formatAgo(iso) {
    const ms = serverNow() - Date.parse(iso);
    if (ms < 60_000) return `${Math.max(0, Math.round(ms / 1000))} s ago`;
    if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min ago`;
    if (ms < 172_800_000) return `${Math.round(ms / 3_600_000)} h ago`;
    return new Date(iso).toLocaleString();
  }

  function formatCount(n) {
    if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
    if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
    return String(n);
  }

  function modelName(model) {
    if (model === "*") return "all models";
    if (model === "") return "(no model)";
    return model;
  }

  function countdown(untilIso) {
    return el("span", {
      class: "countdown",
      "data-until": untilIso,
      title: new Date(untilIso).toLocaleString(),
      text: formatRemaining(Date.parse(untilIso) - serverNow()),
    });
  }

  function notify(message, bad) {
    els.notice.textContent = message;
    els.notice.className = bad ? "notice bad" : "notice";
    els.notice.hidden = false;
  }

  // ---- Rendering -------------------------------------------------------------------------

  function renderKeys(data) {
    clockSkewMs = Date.parse(data.now) - Date.now();
    const rows = data.keys.map(keyRow);
    els.keysBody.replaceChildren(...rows);
    els.keysEmpty.hidden = rows.length > 0;
  }

  function keyRow(key) {
    const stateClass = `state-${key.status === "ok" ? "ok" : key.status}`;
    const project = key.project && !key.project.startsWith("key:") ? key.project : null;

    const who = el(
      "td",
      { "data-label": "Key" },
      el("code", { text: key.id }),
      key.label ? el("span", { class: "label", text: key.label }) : null,
      el("span", {
        class: "label",
        text: [project ? `project ${project}` : null, key.source === "kv" ? "added here" : "env"]
          .filter(Boolean).join(" · "),
      }),
    );

    const state = el(
      "td",
      { "data-label": "State" },
      el("span", { class: `badge ${stateClass}`, text: key.status }),
    );
    if (key.disabled) {
      const d = key.disabled;
      state.append(
        el(
          "span",
          { class: "label" },
          `${d.scope === "project" ? "project " : ""}${d.reason}` +
            (d.status ? ` (HTTP ${d.status})` : "") + `, ${formatAgo(d.since)}`,
        ),
      );
      if (d.recheckAt) {
        state.append(el("span", { class: "label" }, "re-check in ", countdown(d.recheckAt)));
      }
    }

    const cooling = new Map((key.cooldowns || []).map((c) => [c.model, c]));
    const models = new Set([...cooling.keys(), ...Object.keys(key.usageByModel || {})]);
    const list = el("ul", { class: "models" });
    for (const model of [...models].sort()) {
      const c = cooling.get(model);
      const usage = (key.usageByModel || {})[model];
      list.append(el(
        "li",
        { "data-model": model },
        el("span", { class: "mono", text: modelName(model) }),
        c
          ? el(
            "span",
            { class: "state-cooling", title: c.reason },
            `cooling (${c.window}) `,
            countdown(c.until),
          )
          : el("span", { class: "state-ok", text: "ready" }),
        usage
          ? el("span", {
            class: "label",
            text: `${formatCount(usage.requests)} req · ${usage.rateLimited}×429 · ` +
              `${usage.errors} err`,
          })
          : null,
      ));
    }
    const modelsCell = el(
      "td",
      { "data-label": "Models today" },
      models.size ? list : el("span", { class: "label", text: "no traffic today" }),
    );

    const u = key.usageToday || {};
    const today = el(
      "td",
      { "data-label": "Today" },
      `${formatCount(u.requests || 0)} requests`,
      el("span", {
        class: "label",
        text: `${formatCount(u.successes || 0)} ok · ${u.rateLimited || 0}×429 · ` +
          `${u.errors || 0} errors`,
      }),
      el("span", {
        class: "label",
        text: `tokens ${formatCount(u.promptTokens || 0)} in / ${
          formatCount(u.outputTokens || 0)
        } out`,
      }),
    );

    const lastError = el(
      "td",
      { "data-label": "Last error" },
      key.lastError
        ? `${key.lastError.status} ${key.lastError.reason}`
        : el("span", { class: "label", text: "none" }),
      key.lastError ? el("span", { class: "label", text: formatAgo(key.lastError.at) }) : null,
    );

    const button = (action, text, extra) =>
      el("button", { type: "button", "data-action": action, "data-id": key.id, ...extra }, text);
    const actions = el(
      "td",
      { "data-label": "Actions" },
      el(
        "div",
        { class: "actions" },
        key.disabled ? button("enable", "Enable") : button("disable", "Disable"),
        button("check", "Check"),
        key.cooldowns && key.cooldowns.length ? button("clear", "Clear cooldown") : null,
        key.source === "kv" ? button("remove", "Remove", { class: "danger" }) : null,
      ),
    );

    return el(
      "tr",
      { "data-key-id": key.id, "data-status": key.status },
      who,
      state,
      modelsCell,
      today,
      lastError,
      actions,
    );
  }

  function renderErrors(data) {
    const rows = data.errors.map((e) =>
      el(
        "tr",
        {},
        el("td", { "data-label": "When", title: e.at, text: formatAgo(e.at) }),
        el(
          "td",
          { "data-label": "Key" },
          e.keyId ? el("code", { text: e.keyId }) : el("span", { class: "label", text: "—" }),
        ),
        el("td", { "data-label": "Model", class: "mono", text: modelName(e.model) }),
        el("td", { "data-label": "Status", text: String(e.status || "—") }),
        el("td", { "data-label": "Reason", text: e.reason }),
      )
    );
    els.errorsBody.replaceChildren(...rows);
    els.errorsEmpty.hidden = rows.length > 0;
  }

  function renderSummary(health) {
    const k = health.keys || {};
    const parts = [
      `v${health.version}`,
      health.build ? `build ${health.build}` : null,
      health.platform,
      `store ${health.store}`,
      `${k.total} keys: ${
        k.usable - k.cooling
      } ready, ${k.cooling} cooling, ${k.disabled} disabled`,
    ].filter(Boolean);
    els.summary.replaceChildren(parts.join(" · "));
    if (health.nextRecoveryAt) {
      els.summary.append(" · next key back in ", countdown(health.nextRecoveryAt));
    }
  }

  function renderChart(data) {
    if (typeof uPlot === "undefined") {
      els.chart.textContent = "The chart library did not load.";
      return;
    }
    const xs = data.points.map((p) => Date.parse(p.t) / 1000);
    const series = [
      xs,
      data.points.map((p) => p.requests),
      data.points.map((p) => p.rateLimited),
      data.points.map((p) => p.errors),
    ];
    if (chart) {
      chart.setData(series);
      return;
    }
    const style = getComputedStyle(document.documentElement);
    const muted = style.getPropertyValue("--muted").trim() || "#888";
    const line = style.getPropertyValue("--line").trim() || "#ddd";
    const axis = { stroke: muted, grid: { stroke: line, width: 1 }, ticks: { stroke: line } };
    chart = new uPlot(
      {
        width: Math.max(260, els.chart.clientWidth),
        height: 240,
        scales: { x: { time: true } },
        axes: [axis, { ...axis, size: 44 }],
        series: [
          {},
          { label: "Requests", stroke: style.getPropertyValue("--accent").trim(), width: 2 },
          { label: "Upstream 429s", stroke: style.getPropertyValue("--bad").trim(), width: 2 },
          { label: "Errors", stroke: style.getPropertyValue("--warn").trim(), width: 1 },
        ],
      },
      series,
      els.chart,
    );
    new ResizeObserver(() => {
      chart.setSize({ width: Math.max(260, els.chart.clientWidth), height: 240 });
    }).observe(els.chart);
  }

  // ---- Loading ---------------------------------------------------------------------------

  async function loadHealth() {
    try {
      const response = await fetch(new URL("../healthz", location.href), { cache: "no-store" });
      if (response.ok) renderSummary(await response.json());
    } catch {
      // The summary is a nicety; the tables say what matters.
    }
  }

  async function loadAll() {
    try {
      const [keys, errors] = await Promise.all([
        api("GET", "api/keys"),
        api("GET", "api/errors?limit=50"),
      ]);
      renderKeys(keys);
      renderErrors(errors);
      loadHealth();
    } catch (error) {
      if (!(error instanceof Unauthorized)) notify(`Could not load: ${error.message}`, true);
      throw error;
    }
  }

  async function loadHistory() {
    try {
      renderChart(await api("GET", `api/history?hours=${encodeURIComponent(els.hours.value)}`));
    } catch (error) {
      if (!(error instanceof Unauthorized)) {
        notify(`Could not load history: ${error.message}`, true);
      }
    }
  }

  function tickCountdowns() {
    let expired = false;
    for (const node of document.querySelectorAll(".countdown[data-until]")) {
      const left = Date.parse(node.dataset.until) - serverNow();
      node.textContent = formatRemaining(left);
      if (left <= 0 && left > -1500) expired = true;
    }
    if (expired && !refreshSoon) {
      refreshSoon = setTimeout(() => {
        refreshSoon = undefined;
        loadAll().catch(() => {});
      }, 1500);
    }
  }

  // ---- Session ---------------------------------------------------------------------------

  function showDashboard() {
    els.login.hidden = true;
    els.dashboard.hidden = false;
    els.logout.hidden = false;
    clearInterval(refreshTimer);
    clearInterval(historyTimer);
    refreshTimer = setInterval(() => {
      if (!document.hidden) loadAll().catch(() => {});
    }, REFRESH_MS);
    historyTimer = setInterval(() => {
      if (!document.hidden) loadHistory();
    }, HISTORY_REFRESH_MS);
    loadHistory();
  }

  function logout(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    clearInterval(refreshTimer);
    clearInterval(historyTimer);
    els.dashboard.hidden = true;
    els.logout.hidden = true;
    els.login.hidden = false;
    els.keysBody.replaceChildren();
    els.errorsBody.replaceChildren();
    els.loginError.textContent = message || "";
    els.token.focus();
  }

  els.loginForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = els.token.value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    els.token.value = "";
    els.loginError.textContent = "";
    try {
      await loadAll();
      showDashboard();
    } catch (error) {
      if (!(error instanceof Unauthorized)) {
        sessionStorage.removeItem(TOKEN_KEY);
        els.loginError.textContent = `Could not log in: ${error.message}`;
      }
    }
  });

  els.logout.addEventListener("click", () => logout(""));
  els.refresh.addEventListener("click", () => {
    loadAll().catch(() => {});
    loadHistory();
  });
  els.hours.addEventListener("change", loadHistory);

  // ---- Actions ---------------------------------------------------------------------------

  async function act(button, run) {
    button.disabled = true;
    try {
      notify(await run(), false);
      await loadAll();
    } catch (error) {
      if (!(error instanceof Unauthorized)) notify(error.message, true);
    } finally {
      button.disabled = false;
    }
  }

  els.keysBody.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const id = button.dataset.id;
    const path = `api/keys/${encodeURIComponent(id)}`;
    switch (button.dataset.action) {
      case "disable":
        return act(button, async () => {
          await api("POST", `${path}/disable`, { reason: "disabled on the status page" });
          return `Key ${id} disabled.`;
        });
      case "enable":
        return act(button, async () => {
          await api("POST", `${path}/enable`);
          return `Key ${id} enabled.`;
        });
      case "check":
        return act(button, async () => {
          const result = await api("POST", `${path}/check`);
          return `Key ${id}: upstream answered ${result.upstreamStatus} (${result.outcome}` +
            `${result.reason ? `, ${result.reason}` : ""}).`;
        });
      case "clear":
        return act(button, async () => {
          const result = await api("POST", "api/cooldowns/clear", { keyId: id });
          return `Cleared ${result.cleared} cooldown(s) of key ${id}.`;
        });
      case "remove":
        if (!confirm(`Remove key ${id} from the pool?`)) return;
        return act(button, async () => {
          await api("DELETE", path);
          return `Key ${id} removed.`;
        });
    }
  });

  els.clearAll.addEventListener("click", () =>
    act(els.clearAll, async () => {
      const result = await api("POST", "api/cooldowns/clear", {});
      return `Cleared ${result.cleared} cooldown(s).`;
    }));

  els.addForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const label = els.addLabel.value.trim();
    const keys = els.addKeys.value.split(/\r?\n/).map((line) => line.trim()).filter(Boolean)
      .map((line) => {
        const match = /^([^:\s]+):(\S+)$/.exec(line);
        const spec = match ? { project: match[1], key: match[2] } : { key: line };
        return label ? { ...spec, label } : spec;
      });
    if (keys.length === 0) return;
    const submit = els.addForm.querySelector("button[type=submit]");
    act(submit, async () => {
      const result = await api("POST", "api/keys", { keys });
      // The key values leave the page as soon as the rotator has them.
      els.addKeys.value = "";
      els.addLabel.value = "";
      const existing = result.existing && result.existing.length
        ? ` ${result.existing.length} already in the pool.`
        : "";
      return `Added ${result.added.length} key(s).${existing}`;
    });
  });

  // ---- Start -----------------------------------------------------------------------------

  setInterval(tickCountdowns, 1000);
  loadHealth();
  if (sessionStorage.getItem(TOKEN_KEY)) {
    loadAll().then(showDashboard, () => {});
  } else {
    els.token.focus();
  }
})();
