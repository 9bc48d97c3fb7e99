// The console: a page per path, drawn from the JSON API, refreshed by polling.
import { claims, get, session, takeFragmentToken } from "./api.js";
import { $, h } from "./dom.js";
import { auditPage } from "./page_audit.js";
import { fleetPage } from "./page_fleet.js";
import { instancePage } from "./page_instance.js";
import { serversPage } from "./page_servers.js";
import { navigate, notFound } from "./ui.js";

let stopPage = null;

function route() {
  if (stopPage) stopPage();
  stopPage = null;
  const main = $("#main");
  main.replaceChildren();
  if (!session.token()) {
    loginPage(main);
    return;
  }
  if (location.pathname === "/login") history.replaceState(null, "", "/");
  showHeader();
  const path = location.pathname;
  const instance = /^\/instances\/([^/]+)$/.exec(path);
  const pages = { "/": ["fleet", fleetPage], "/servers": ["servers", serversPage], "/audit": ["audit", auditPage] };
  let stop;
  if (instance) {
    setNav("fleet");
    stop = instancePage(main, decodeURIComponent(instance[1]));
  } else if (pages[path]) {
    setNav(pages[path][0]);
    stop = pages[path][1](main);
  } else {
    main.append(notFound("Page"));
  }
  stopPage = stop || null;
}

function setNav(name) {
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", link.dataset.nav === name);
  }
}

function showHeader() {
  $("#top").hidden = false;
  const known = claims();
  const who = known ? `${known.name || known.sub} · ${known.org}` : "API key";
  const viewOnly = known && !(known.permissions || []).some((p) => p.startsWith("manage:"));
  $("#who").replaceChildren(who, viewOnly ? h("span", { class: "badge view-only" }, "view only") : "");
}

function loginPage(main, message) {
  $("#top").hidden = true;
  const input = h("textarea", { id: "token-input", rows: 4, placeholder: "eyJ… or ofk_…", autocomplete: "off", spellcheck: "false", required: true });
  const error = h("p", { class: "error", id: "login-error" }, message || "");
  const form = h("form", { class: "login", id: "login-form" },
    h("h1", {}, "odoofleet"),
    h("label", { for: "token-input" }, "Token or API key"),
    input,
    error,
    h("button", { type: "submit", class: "primary" }, "Sign in"),
    h("p", { class: "muted" }, "Kept in this browser tab only, and sent in the Authorization header. ",
      h("code", {}, "odoofleet dev"), " prints a link that signs you in."));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    session.set(input.value.trim());
    try {
      await get("/api/instances?limit=1");
    } catch (e) {
      if (e.status === 401) {
        error.textContent = `That token was refused: ${e.message}`;
        return;
      }
    }
    navigate(location.pathname === "/login" ? "/" : location.pathname);
  });
  main.append(form);
}


document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-link]");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
  event.preventDefault();
  navigate(link.getAttribute("href"));
});
window.addEventListener("popstate", route);
// The login link opened in a tab already showing "/" changes only the fragment: no reload.
window.addEventListener("hashchange", () => {
  if (takeFragmentToken()) route();
});
window.addEventListener("navigate", route);
window.addEventListener("signed-out", (event) => {
  if ($("#login-form")) return; // signing in: the form says why the token was refused
  if (stopPage) stopPage();
  stopPage = null;
  const main = $("#main");
  main.replaceChildren();
  loginPage(main, `Signed out: ${event.detail}`);
});
$("#sign-out").addEventListener("click", () => {
  session.clear();
  navigate("/login");
});

takeFragmentToken();
route();
