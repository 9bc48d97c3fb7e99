// The JSON API as the console uses it: the token lives in sessionStorage and travels in the
// Authorization header only (never a cookie: no CSRF; never a URL: no logs).

const KEY = "odoofleet.token";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export const session = {
  token: () => sessionStorage.getItem(KEY),
  set: (token) => sessionStorage.setItem(KEY, token),
  clear: () => sessionStorage.removeItem(KEY),
};

// `odoofleet dev` prints a link whose fragment carries its token: the fragment never reaches
// a server, and it is removed from the address bar at once.
export function takeFragmentToken() {
  const found = /^#token=([^&]+)/.exec(location.hash);
  if (!found) return false;
  session.set(decodeURIComponent(found[1]));
  history.replaceState(null, "", location.pathname + location.search);
  return true;
}

// The claims of a JWT (not verified here: the server decides); null for an API key.
export function claims() {
  const token = session.token();
  const parts = token ? token.split(".") : [];
  if (parts.length !== 3) return null;
  try {
    const binary = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/"));
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

// Whether to offer what needs `permission`; an API key's permissions are not readable here,
// so it is offered and the server answers 403 where it must.
export function can(permission) {
  const known = claims();
  if (!known) return true;
  const [verb, resource] = permission.split(":");
  const held = known.permissions || [];
  return held.includes(permission) || (verb === "view" && held.includes(`manage:${resource}`));
}

export async function call(method, path, body) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${session.token()}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { title: response.statusText, detail: text.slice(0, 300) };
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data && typeof data === "object" ? data : {});
    if (response.status === 401) {
      session.clear();
      window.dispatchEvent(new CustomEvent("signed-out", { detail: error.message }));
    }
    throw error;
  }
  return data;
}

export const get = (path) => call("GET", path);

// Every page of a cursor-paged list (bounded: the console shows a fleet, not an export).
export async function allPages(path, key, pages = 20) {
  const found = [];
  let cursor = null;
  for (let page = 0; page < pages; page += 1) {
    const sep = path.includes("?") ? "&" : "?";
    const body = await get(`${path}${sep}limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    found.push(...body[key]);
    cursor = body.nextCursor;
    if (!cursor) break;
  }
  return found;
}
