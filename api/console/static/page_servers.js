// Servers: status, facts, instances on each, and re-validation.
import { allPages, call, can, get } from "./api.js";
import { ago, bytes, h, poll, statusBadge } from "./dom.js";
import { flash, flashProblem, reportRefresh } from "./ui.js";

const REFRESH_MS = 3000;

export function serversPage(main) {
  const rows = h("tbody");
  const columns = ["Server", "Status", "System", "Docker", "Instances", "Last seen", ""];
  main.append(h("section", { class: "page" },
    h("div", { class: "page-head" }, h("h1", {}, "Servers")),
    h("table", { class: "grid", id: "servers" }, h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c)))), rows)));

  const validate = async (server) => {
    try {
      await call("POST", `/api/servers/${server.id}/validate`);
      flash(`Validation of ${server.name} started.`, "info");
    } catch (error) {
      flashProblem(error);
    }
  };

  return poll(async () => {
    const [servers, instances] = await Promise.all([get("/api/servers"), instancesOrNone()]);
    const counts = new Map();
    for (const i of instances) counts.set(i.serverId, (counts.get(i.serverId) || 0) + 1);
    rows.replaceChildren(...servers.servers.map((s) => h("tr", { dataset: { serverId: s.id } },
      h("td", {}, h("strong", {}, s.name), h("div", { class: "muted" }, `${s.sshUser}@${s.host}:${s.port}`)),
      h("td", {}, statusBadge(s.status), s.statusMessage ? h("div", { class: "muted" }, s.statusMessage) : null),
      h("td", {}, [s.osName, s.osVersion].filter(Boolean).join(" ") || "—",
        h("div", { class: "muted" }, `${s.cpuCores ?? "?"} cores · ${bytes(s.ramTotalBytes)}`)),
      h("td", {}, s.dockerVersion || "—"),
      h("td", {}, instances === null ? "—" : String(counts.get(s.id) || 0)),
      h("td", {}, ago(s.lastSeenAt)),
      h("td", {}, can("manage:servers") ? h("button", { type: "button", class: "validate", onclick: () => validate(s) }, "Validate") : null))));
    if (!servers.servers.length) {
      rows.append(h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, "No servers. Register one with POST /api/servers.")));
    }
  }, REFRESH_MS, reportRefresh);
}

async function instancesOrNone() {
  try {
    return await allPages("/api/instances", "instances");
  } catch (error) {
    if (error.status === 403) return null;
    throw error;
  }
}
