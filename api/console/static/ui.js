// What every page shares: the flash line, the confirmation dialog, navigation, "not found".
import { $, h } from "./dom.js";

export function flash(message, kind = "error") {
  const box = $("#flash");
  box.className = `flash flash-${kind}`;
  box.replaceChildren(
    h("span", { class: "flash-text" }, message),
    h("button", { type: "button", class: "plain", "aria-label": "dismiss", onclick: () => { box.hidden = true; } }, "×"),
  );
  box.hidden = false;
}

// A refusal shows the problem's own words (RFC 9457 title and detail), never raw JSON.
export function flashProblem(error) {
  const problem = error.problem || {};
  const fields = (problem.errors || []).map((e) => `${e.field}: ${e.message}`).join("; ");
  const detail = [problem.detail, fields].filter(Boolean).join(" — ") || error.message;
  flash(error.status ? `${problem.title || "Refused"} (${error.status}): ${detail}` : String(error.message || error));
}

// A refresh that failed: a refusal shows its problem; an unreachable odoofleet shows one
// quiet line until a refresh goes through again (the page keeps its last data meanwhile).
export function reportRefresh(error) {
  const offline = $("#offline");
  offline.hidden = !error || Boolean(error.status);
  if (error && error.status) flashProblem(error);
}

export function navigate(path) {
  history.pushState(null, "", path);
  window.dispatchEvent(new Event("navigate"));
}

export function notFound(what) {
  return h("section", { class: "page not-found", id: "not-found" },
    h("h1", {}, `${what} not found`),
    h("p", {}, "It does not exist in your organization, or it was removed."),
    h("a", { href: "/", "data-link": true }, "Back to the fleet"));
}

// Waits for the confirmation dialog; true when the operator confirmed.
export function confirmed(text, label) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = label;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}
