// Every figure comes from the API: this is the one way pages reach it. The session cookie authenticates;
// changes carry the CSRF token the server set beside it.

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `the server answered ${status}`);
    this.status = status;
    this.type = error.type || "Error";
  }
}

function csrf() {
  const found = document.cookie.split("; ").find((c) => c.startsWith("pepper_csrf="));
  return found ? decodeURIComponent(found.slice("pepper_csrf=".length)) : "";
}

async function call(method, path, body, contentType = "application/json") {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrf();
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = contentType;
    payload = contentType === "application/json" ? JSON.stringify(body) : body;
  }
  const response = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (response.status === 401 && !path.startsWith("/session")) {
    window.location.assign("/sign-in");
    throw new ApiError(401, data);
  }
  if (!response.ok && !(response.status === 503 && path.startsWith("/api/v1/health"))) {
    throw new ApiError(response.status, data);
  }
  return data;
}

export const api = {
  get: (path) => call("GET", `/api/v1${path}`),
  post: (path, body) => call("POST", `/api/v1${path}`, body ?? {}),
  postText: (path, text, type) => call("POST", `/api/v1${path}`, text, type),
  del: (path, body) => call("DELETE", `/api/v1${path}`, body),
  session: () => call("GET", "/session"),
  signOut: () => call("POST", "/session/end"),
};

/** Server-sent events of the API (`/api/v1/events?run=`); returns a function that stops listening.
 *
 * The stream tells what changes from the moment it opens, nothing from before: `catchUp` is called each time it
 * opens or opens again (after the server restarted, or the connection dropped), so the page reads again what
 * changed while no stream was open, the time between its first read and the stream's start included. */
export function listen(query, handlers, catchUp) {
  if (typeof catchUp !== "function") throw new TypeError("listen needs catchUp: what reads the page's data again");
  const source = new EventSource(`/api/v1/events${query}`);
  source.addEventListener("open", () => catchUp());
  for (const [kind, handler] of Object.entries(handlers)) {
    source.addEventListener(kind, (event) => handler(JSON.parse(event.data)));
  }
  return () => source.close();
}

// An id as one path segment: its slashes escaped too, so the server never reads part of it as a sub-resource.
export function q(id) {
  return encodeURIComponent(id);
}
