// The dashboard's router: the URL names the page; links inside it are followed without reloading, and every
// page can be reloaded or shared as it is.

import { api } from "./api.js";
import { h, notice, put } from "./dom.js";
import * as overview from "./pages/overview.js";
import * as agents from "./pages/agents.js";
import * as tasks from "./pages/tasks.js";
import * as task from "./pages/task.js";
import * as runs from "./pages/runs.js";
import * as run from "./pages/run.js";
import * as deadLetters from "./pages/dead_letters.js";
import * as resources from "./pages/resources.js";
import * as signIn from "./pages/sign_in.js";

const ROUTES = [
  [/^\/$/, overview, "Overview"],
  [/^\/agents$/, agents, "Agents"],
  [/^\/tasks$/, tasks, "Tasks"],
  [/^\/tasks\/(.+)$/, task, "Task"],
  [/^\/runs$/, runs, "Runs"],
  [/^\/runs\/(.+)$/, run, "Run"],
  [/^\/dead-letters$/, deadLetters, "Dead letters"],
  [/^\/resources$/, resources, "Resources"],
  [/^\/sign-in$/, signIn, "Sign in"],
];

let session = null;
let leave = null;
// Counts the pages shown: a page still loading when another one is asked for is let go once it has loaded.
let shown = 0;

export function navigate(path) {
  window.history.pushState({}, "", path);
  show();
}

async function who() {
  if (session) return session;
  try {
    session = await api.session();
  } catch {
    session = null;
  }
  return session;
}

function header(me) {
  const slot = document.getElementById("who");
  if (!me) {
    put(slot);
    return;
  }
  const out = h("button", { type: "button", class: "link", id: "sign-out" }, "Sign out");
  out.addEventListener("click", async () => {
    await api.signOut();
    session = null;
    navigate("/sign-in");
  });
  put(slot, h("span", { class: "muted", title: "token name and scope" }, `${me.name} · ${me.scope}`), " ", out);
}

async function show() {
  const mine = ++shown;
  if (leave) {
    leave();
    leave = null;
  }
  const path = window.location.pathname;
  const root = document.getElementById("page");
  const [pattern, page, title] = ROUTES.find(([p]) => p.test(path)) || [];
  for (const a of document.querySelectorAll("#nav a")) {
    const href = a.getAttribute("href");
    a.classList.toggle("active", href === "/" ? path === "/" : path.startsWith(href));
  }
  if (!page) {
    put(root, notice(`No page at ${path}.`));
    return;
  }
  const me = page === signIn ? null : await who();
  if (mine !== shown) return; // another page was asked for meanwhile
  if (!me && page !== signIn) {
    window.history.replaceState({}, "", "/sign-in");
    return show();
  }
  header(me);
  document.title = `${title} · pepper`;
  const params = pattern.exec(path).slice(1).map((p) => p.split("/").map(decodeURIComponent).join("/"));
  const context = { me, canWrite: !!me && me.scope !== "read", navigate, query: new URLSearchParams(window.location.search) };
  // Each page draws into its own slot: one still loading after another was asked for draws out of sight.
  const slot = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  put(root, slot);
  try {
    const done = (await page.render(slot, params, context)) || null;
    if (mine === shown) leave = done;
    else if (done) done(); // its stream and timers stop: it is not on screen
  } catch (error) {
    if (mine === shown) put(slot, h("h1", {}, title), notice(error.message));
  }
}

document.addEventListener("click", (event) => {
  const a = event.target.closest("a");
  if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const href = a.getAttribute("href");
  if (!href || !href.startsWith("/") || href.startsWith("/api/") || a.target) return;
  event.preventDefault();
  navigate(href);
});
window.addEventListener("popstate", show);
show();
