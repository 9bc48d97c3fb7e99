// Fleet: every instance of the organization, filtered and searched here, refreshed by polling.
import { allPages, get } from "./api.js";
import { ago, gradeBadge, h, poll, statusBadge } from "./dom.js";
import { reportRefresh } from "./ui.js";

export const STATUSES = ["creating", "running", "stopped", "starting", "stopping", "restarting", "failed", "removing"];
// Polling rather than GET /api/events/stream: over HTTP/1.1 a stream holds one of the
// browser's six connections to odoofleet, and Chromium keeps a cancelled one for a minute
// (draining it), so a few reloads would leave the console waiting for a free connection.
const REFRESH_MS = 2000;

export function fleetPage(main) {
  const search = h("input", { type: "search", id: "fleet-search", placeholder: "Search name or slug", "aria-label": "search" });
  const serverFilter = h("select", { id: "fleet-server", "aria-label": "server" }, h("option", { value: "" }, "All servers"));
  const statusFilter = h("select", { id: "fleet-status", "aria-label": "status" },
    h("option", { value: "" }, "All statuses"), STATUSES.map((s) => h("option", { value: s }, s)));
  const summary = h("span", { class: "muted", id: "fleet-summary" }, "loading…");
  const rows = h("tbody");
  const columns = ["Instance", "Status", "Health", "Server", "Odoo", "Colour", "Last backup"];
  main.append(h("section", { class: "page" },
    h("div", { class: "page-head" }, h("h1", {}, "Fleet"), summary),
    h("div", { class: "toolbar" }, search, serverFilter, statusFilter),
    h("table", { class: "grid", id: "fleet" }, h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c)))), rows)));

  let instances = [];
  let servers = new Map();

  const draw = () => {
    const text = search.value.trim().toLowerCase();
    const shown = instances.filter((i) =>
      (!serverFilter.value || i.serverId === serverFilter.value) &&
      (!statusFilter.value || i.status === statusFilter.value) &&
      (!text || i.name.toLowerCase().includes(text) || i.slug.includes(text)));
    rows.replaceChildren(...shown.map((i) => row(i, servers)));
    if (!instances.length) {
      rows.append(h("tr", {}, h("td", { colspan: columns.length, class: "empty" },
        "No instances yet. Create one with POST /api/instances (see API docs).")));
    }
    summary.textContent = `${shown.length} of ${instances.length} instances · updated ${new Date().toLocaleTimeString()}`;
  };
  [search, serverFilter, statusFilter].forEach((el) => el.addEventListener("input", draw));

  return poll(async () => {
    const [found, serverList] = await Promise.all([allPages("/api/instances", "instances"), serversOrNone()]);
    instances = found;
    servers = new Map(serverList.map((s) => [s.id, s]));
    syncServerOptions(serverFilter, serverList);
    draw();
  }, REFRESH_MS, reportRefresh);
}

// A token without view:servers still sees its fleet, with server ids instead of names.
export async function serversOrNone() {
  try {
    return (await get("/api/servers")).servers;
  } catch (error) {
    if (error.status === 403) return [];
    throw error;
  }
}

function syncServerOptions(select, serverList) {
  const have = new Set([...select.options].map((o) => o.value));
  for (const server of serverList) {
    if (!have.has(server.id)) select.append(h("option", { value: server.id }, server.name));
  }
}

function row(instance, servers) {
  const server = servers.get(instance.serverId);
  // The latest completed backup, and the latest asked for when it is running or failed.
  const backupNow = instance.lastBackupStatus && instance.lastBackupStatus !== "completed"
    ? statusBadge(instance.lastBackupStatus) : null;
  return h("tr", { dataset: { instanceId: instance.id } },
    h("td", {}, h("a", { href: `/instances/${instance.id}`, "data-link": true, class: "name" }, instance.name),
      h("div", { class: "muted" }, instance.slug)),
    h("td", { class: "status-cell" }, statusBadge(instance.status)),
    h("td", {}, gradeBadge(instance.healthScoreGrade, instance.healthScore)),
    h("td", {}, server ? server.name : h("code", {}, instance.serverId.slice(0, 8))),
    h("td", {}, `${instance.odooVersion} ${instance.odooEdition === "enterprise" ? "EE" : "CE"}`),
    h("td", {}, instance.activeColor ? h("span", { class: `colour colour-${instance.activeColor}` }, instance.activeColor) : "—"),
    h("td", {}, instance.lastBackupAt ? ago(instance.lastBackupAt) : "—", backupNow ? " " : null, backupNow));
}
