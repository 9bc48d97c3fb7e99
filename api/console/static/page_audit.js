// Audit: the audit query with its filters, a page at a time, and CSV/JSON export.
import { get } from "./api.js";
import { h, when } from "./dom.js";
import { flashProblem } from "./ui.js";

const PER_PAGE = 50;
const EXPORT_PAGES = 50;
const RESOURCE_TYPES = ["instance", "server", "domain", "mcp", "backup", "backup_destination", "backup_schedule", "webhook", "api_key"];
const FIELDS = ["createdAt", "action", "resourceType", "resourceId", "resourceName", "userId", "userName", "ipAddress", "userAgent", "eventType", "position", "correlationId"];

export function auditPage(main) {
  const input = (name, label, type = "text") => h("label", {}, label, h("input", { name, type, id: `audit-${name}` }));
  const form = h("form", { class: "toolbar filters", id: "audit-form" },
    h("label", {}, "Resource", h("select", { name: "resource_type" },
      h("option", { value: "" }, "any"),
      ...RESOURCE_TYPES.map((type) => h("option", { value: type }, type)))),
    input("action", "Action"), input("resource_id", "Resource id"), input("user_id", "User id"),
    input("start_date", "From", "datetime-local"), input("end_date", "To", "datetime-local"),
    h("button", { type: "submit", class: "primary" }, "Search"));
  const rows = h("tbody");
  const pager = h("div", { class: "pager" });
  const exports = h("div", { class: "exports" },
    h("button", { type: "button", id: "export-csv", onclick: () => download("csv") }, "Export CSV"),
    h("button", { type: "button", id: "export-json", onclick: () => download("json") }, "Export JSON"));
  main.append(h("section", { class: "page" },
    h("div", { class: "page-head" }, h("h1", {}, "Audit"), exports), form,
    h("table", { class: "grid", id: "audit" },
      h("thead", {}, h("tr", {}, ["When", "Action", "Resource", "Who", "From"].map((c) => h("th", {}, c)))), rows),
    pager));

  let page = 1;
  const query = () => {
    const params = new URLSearchParams();
    for (const [key, value] of new FormData(form)) {
      if (!value) continue;
      params.set(key, key.endsWith("_date") ? new Date(value).toISOString() : value);
    }
    return params;
  };
  const load = async () => {
    const params = query();
    params.set("page", page);
    params.set("per_page", PER_PAGE);
    try {
      const found = await get(`/api/audit-logs?${params}`);
      rows.replaceChildren(...found.items.map((a) => h("tr", {},
        h("td", {}, when(a.createdAt)), h("td", {}, h("code", {}, a.action)),
        h("td", {}, a.resourceName || a.resourceId, h("div", { class: "muted" }, a.resourceType)),
        h("td", {}, a.userName || a.userId), h("td", {}, a.ipAddress || "—"))));
      if (!found.items.length) rows.append(h("tr", {}, h("td", { colspan: 5, class: "empty" }, "Nothing matches.")));
      const last = Math.max(1, Math.ceil(found.total / PER_PAGE));
      pager.replaceChildren(
        h("button", { type: "button", disabled: page <= 1, onclick: () => { page -= 1; load(); } }, "‹ Newer"),
        h("span", { class: "muted" }, `page ${page} of ${last} · ${found.total} ${found.total === 1 ? "entry" : "entries"}`),
        h("button", { type: "button", disabled: page >= last, onclick: () => { page += 1; load(); } }, "Older ›"));
    } catch (error) {
      flashProblem(error);
    }
  };
  const download = async (format) => {
    const items = [];
    try {
      for (let p = 1; p <= EXPORT_PAGES; p += 1) {
        const params = query();
        params.set("page", p);
        params.set("per_page", 100);
        const found = await get(`/api/audit-logs?${params}`);
        items.push(...found.items);
        if (items.length >= found.total || !found.items.length) break;
      }
    } catch (error) {
      flashProblem(error);
      return;
    }
    const body = format === "json" ? JSON.stringify(items, null, 2) : csv(items);
    const link = h("a", {
      href: URL.createObjectURL(new Blob([body], { type: format === "json" ? "application/json" : "text/csv" })),
      download: `odoofleet-audit.${format}`,
    });
    document.body.append(link);
    link.click();
    link.remove();
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    page = 1;
    load();
  });
  load();
  return null;
}

function csv(items) {
  const cell = (value) => {
    const text = value === null || value === undefined ? "" : String(value);
    // A leading = + - @ would be a formula in a spreadsheet (CSV injection).
    const safe = /^[=+\-@]/.test(text) ? `'${text}` : text;
    return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
  };
  return [FIELDS.join(","), ...items.map((item) => FIELDS.map((f) => cell(item[f])).join(","))].join("\r\n") + "\r\n";
}
