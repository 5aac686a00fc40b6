// Resources and leases: the pool's capacity, what leases hold, what is free, and every live lease.

import { api } from "../api.js";
import { h, link, put, section, table, taskPath, when } from "../dom.js";

export async function render(root) {
  const pool = await api.get("/resources");
  const names = [...new Set([...Object.keys(pool.capacity), ...Object.keys(pool.held), ...Object.keys(pool.free)])].sort();
  put(root,
    h("h1", {}, "Resources"),
    section(`Pool${pool.host ? ` on ${pool.host}` : ""}`, names.length
      ? table(["resource", "capacity", "held", "free", ""], names.map((n) => [
        n, String(pool.capacity[n] ?? "–"), String(pool.held[n] ?? 0), String(pool.free[n] ?? "–"),
        typeof pool.capacity[n] === "number" && pool.capacity[n] > 0
          ? h("meter", { min: 0, max: pool.capacity[n], value: pool.held[n] || 0 }) : "",
      ]), { id: "pool" })
      : h("p", { class: "muted" }, "The pool has no limited resource.")),
    section("Leases", pool.leases.length
      ? table(["lease", "agent", "task", "resources", "granted", "expires"], pool.leases.map((l) => [
        h("code", {}, l.lease_id), l.agent_id, l.task_id ? link(taskPath(l.task_id), l.task_id) : "–",
        Object.entries(l.resources).map(([k, v]) => `${k} ${v}`).join(", "), when(l.granted_at), when(l.expires_at),
      ]), { id: "leases" })
      : h("p", { class: "muted" }, "No live lease.")),
  );
}
