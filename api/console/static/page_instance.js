// One instance: its settings, domains, health, operations, history, and the lifecycle buttons.
import { call, can, get } from "./api.js";
import { factorChart, sparkline } from "./charts.js";
import { ago, bytes, duration, gradeBadge, h, poll, statusBadge, when } from "./dom.js";
import { confirmed, flash, flashProblem, navigate, notFound, reportRefresh } from "./ui.js";

const REFRESH_MS = 2000; // polled, as the fleet page is (page_fleet.js says why)

// Which states allow which action (API.md "Control body"), and why not otherwise.
const ACTIONS = [
  { action: "start", label: "Start", allowed: ["stopped", "failed"], why: "only a stopped or failed instance can start" },
  { action: "stop", label: "Stop", allowed: ["running"], why: "only a running instance can stop" },
  { action: "restart", label: "Restart", allowed: ["running", "failed"], why: "only a running or failed instance can restart" },
];

export function instancePage(main, id) {
  const opened = new Set(); // <details> the operator opened, kept open across refreshes
  const parts = {
    head: h("div", { class: "page-head" }),
    actions: h("div", { class: "actions", id: "actions" }),
    settings: h("section", { class: "card", id: "settings" }),
    domains: h("section", { class: "card", id: "domains" }),
    health: h("section", { class: "card", id: "health" }),
    operations: h("section", { class: "card wide", id: "operations" }),
    history: h("section", { class: "card wide", id: "history" }),
    audit: h("section", { class: "card wide", id: "audit-trail" }),
  };
  const page = h("section", { class: "page instance" }, parts.head, parts.actions,
    h("div", { class: "cards" }, parts.settings, parts.domains, parts.health, parts.operations, parts.history, parts.audit));
  main.append(page);
  main.addEventListener("toggle", (event) => {
    const key = event.target.dataset && event.target.dataset.key;
    if (key) event.target.open ? opened.add(key) : opened.delete(key);
  }, true);

  let busy = false;
  let instance = null;
  const servers = new Map(); // id → name, looked up once (a token without view:servers keeps ids)
  const refresh = async () => {
    try {
      instance = await get(`/api/instances/${encodeURIComponent(id)}`);
    } catch (error) {
      if (error.status === 404 || error.status === 400) {
        main.replaceChildren(notFound("Instance"));
        return poll.STOP;
      }
      throw error;
    }
    const path = `/api/instances/${instance.id}`;
    const [operations, score, history, health] = await Promise.all([
      get(`${path}/operations`), get(`${path}/health-score`), get(`${path}/health-history`), get(`${path}/health`),
    ]);
    drawHead(parts.head, instance);
    drawActions(parts.actions, instance, busy, act);
    if (!servers.has(instance.serverId)) servers.set(instance.serverId, await serverName(instance.serverId));
    drawSettings(parts.settings, instance, servers.get(instance.serverId));
    drawDomains(parts.domains, instance.domains);
    drawHealth(parts.health, score, history, health);
    drawOperations(parts.operations, operations.operations, opened);
    await drawHistory(parts.history, parts.audit, instance, opened);
    return undefined;
  };

  const act = async (action) => {
    const verb = action === "delete" ? "Delete" : action[0].toUpperCase() + action.slice(1);
    const warning = action === "delete" ? " Its containers and database are removed; this cannot be undone." : "";
    if (!(await confirmed(`${verb} ${instance.name}?${warning}`, verb))) return;
    busy = true;
    drawActions(parts.actions, instance, busy, act);
    try {
      if (action === "delete") {
        await call("DELETE", `/api/instances/${instance.id}`);
        flash(`${instance.name} is being deleted.`, "info");
        navigate("/");
        return;
      }
      await call("POST", `/api/instances/${instance.id}/control`, { action });
      flash(`${verb} requested for ${instance.name}.`, "info");
    } catch (error) {
      flashProblem(error);
    } finally {
      busy = false;
    }
    await refresh().catch(reportRefresh);
  };

  return poll(refresh, REFRESH_MS, reportRefresh);
}

function drawHead(head, instance) {
  head.replaceChildren(
    h("h1", {}, instance.name, " ", statusBadge(instance.status)),
    h("span", { class: "muted" }, instance.slug, " · ", instance.statusMessage || `updated ${ago(instance.updatedAt)}`));
}

function drawActions(box, instance, busy, act) {
  if (!can("manage:instances")) {
    box.replaceChildren();
    return;
  }
  const buttons = ACTIONS.map(({ action, label, allowed, why }) => {
    const ok = allowed.includes(instance.status) && !busy;
    const reason = ok ? null : busy ? "a request is in flight" : `${why} (it is ${instance.status})`;
    return button(action, label, reason, () => act(action));
  });
  const removing = instance.status === "removing";
  buttons.push(button("delete", "Delete", removing ? "it is being deleted" : busy ? "a request is in flight" : null, () => act("delete"), "danger"));
  box.replaceChildren(...buttons);
}

function button(action, label, reason, onclick, kind = "") {
  return h("span", { class: "action" },
    h("button", { type: "button", id: `action-${action}`, class: kind, disabled: reason !== null, title: reason, onclick }, label),
    reason ? h("small", { class: "reason" }, reason) : null);
}

function table(heads, rows, empty) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h("table", { class: "grid" }, h("thead", {}, h("tr", {}, heads.map((c) => h("th", {}, c)))), h("tbody", {}, rows));
}

async function serverName(id) {
  try {
    return (await get(`/api/servers/${id}`)).name;
  } catch (error) {
    if (error.status === 403 || error.status === 404) return null;
    throw error;
  }
}

function drawSettings(box, i, server) {
  const rows = [
    ["Odoo", `${i.odooVersion} ${i.odooEdition}`], ["Environment", i.environmentType],
    ["Active colour", i.activeColor || "—"], ["Server", server ? h("a", { href: "/servers", "data-link": true }, server) : h("code", {}, i.serverId)],
    ["HTTP port", i.httpPortHost ? `${i.httpPortHost} (host) → ${i.httpPort}` : i.httpPort],
    ["Workers", `${i.workers} · cron threads ${i.maxCronThreads}`],
    ["Memory limits", `${bytes(i.limitMemorySoft)} soft · ${bytes(i.limitMemoryHard)} hard`],
    ["Addons path", i.addonsPath || "—"],
    ["Environment variables", Object.keys(i.envVars || {}).join(", ") || "—"],
    ["Restarts", `${i.restartCount ?? 0}${i.lastRestartAt ? ` · last ${ago(i.lastRestartAt)}` : ""}`],
    ["Created", when(i.createdAt)], ["Version", i.version],
  ];
  box.replaceChildren(h("h2", {}, "Settings"),
    h("dl", { class: "facts" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
}

function drawDomains(box, domains) {
  box.replaceChildren(h("h2", {}, "Domains"), table(["Domain", "DNS", "TLS"], (domains || []).map((d) =>
    h("tr", {}, h("td", {}, d.domain, d.isPrimary ? h("span", { class: "badge" }, "primary") : ""),
      h("td", {}, d.dnsStatus), h("td", {}, d.sslStatus))), "No domains."));
}

function drawHealth(box, score, history, health) {
  box.replaceChildren(
    h("h2", {}, "Health ", gradeBadge(score.grade, score.score)),
    h("p", { class: "muted" }, `${health.status}${health.responseTimeMs !== null ? ` · ${Math.round(health.responseTimeMs)} ms` : ""}`,
      ` · checked ${ago(health.lastCheckedAt)}`, health.message ? ` · ${health.message}` : ""),
    score.factors.length ? factorChart(score.factors) : h("p", { class: "muted", id: "factor-chart-empty" }, "No score until the first health check."),
    h("h3", {}, "Last 24 hours"),
    sparkline(history.buckets, history.bucketSeconds));
}

function drawOperations(box, operations, opened) {
  const items = operations.map((op) => {
    const total = op.completedAt ? new Date(op.completedAt) - new Date(op.startedAt) : null;
    const longest = Math.max(1, ...op.steps.map((s) => s.durationMs || 0));
    return h("li", { class: `operation op-${op.status}`, dataset: { operationId: op.id, type: op.type } },
      h("div", { class: "op-head" }, h("strong", {}, op.type), " ", statusBadge(op.status),
        h("span", { class: "muted" }, ` ${when(op.startedAt)}${total !== null ? ` · ${duration(total)}` : ""}`)),
      op.error ? h("p", { class: "error" }, op.error) : null,
      h("ol", { class: "steps" }, op.steps.map((step) => {
        const bar = h("span", { class: `bar step-${step.status}` });
        bar.style.width = `${Math.max(2, (100 * (step.durationMs || 0)) / longest)}%`;
        const key = `${op.id}/${step.name}`;
        return h("li", { class: "step" },
          h("span", { class: "step-name" }, step.name), h("span", { class: "track" }, bar),
          h("span", { class: "muted step-time" }, step.durationMs !== null ? duration(step.durationMs) : step.status),
          step.output ? h("details", { dataset: { key }, open: opened.has(key) }, h("summary", {}, "output"), h("pre", {}, step.output)) : null);
      })));
  });
  box.replaceChildren(h("h2", {}, "Operations"),
    items.length ? h("ol", { class: "timeline", id: "timeline" }, items) : h("p", { class: "muted" }, "No operations yet."));
}

// A section the caller may not read (403: an API key, whose permissions the page could not
// know beforehand) says so instead of failing the page.
async function unlessForbidden(request) {
  try {
    return await request;
  } catch (error) {
    if (error.status === 403) return null;
    throw error;
  }
}

async function drawHistory(historyBox, auditBox, instance, opened) {
  const withheld = h("p", { class: "muted" }, "Needs the view:audit permission.");
  const readable = can("view:audit");
  const [events, audit] = await Promise.all([
    readable ? unlessForbidden(get(`/api/instances/${instance.id}/events`)) : null,
    readable ? unlessForbidden(get(`/api/audit-logs?resource_type=instance&resource_id=${instance.id}&per_page=50`)) : null,
  ]);
  historyBox.replaceChildren(h("h2", {}, "Event history"), events === null ? withheld : table(["#", "Event", "Recorded", "Data"],
    events.events.slice().reverse().map((e) => {
      const key = `event/${e.position}`;
      return h("tr", {}, h("td", {}, e.version), h("td", {}, e.type), h("td", {}, when(e.recordedAt)),
        h("td", {}, h("details", { dataset: { key }, open: opened.has(key) }, h("summary", {}, "data"),
          h("pre", {}, JSON.stringify(e.data, null, 2)))));
    }), "No events."));
  auditBox.replaceChildren(h("h2", {}, "Audit trail"), audit === null ? withheld.cloneNode(true) : table(["When", "Action", "Who", "From"],
    audit.items.map((a) => h("tr", {}, h("td", {}, when(a.createdAt)), h("td", {}, a.action),
      h("td", {}, a.userName || a.userId), h("td", {}, a.ipAddress || "—"))), "Nothing recorded."));
}
