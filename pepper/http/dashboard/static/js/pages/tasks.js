// Tasks: a filterable, paginated table (state, type, id search: every filter applied by the server to every
// task), newest first; the cursor pages on.

import { api } from "../api.js";
import { badge, h, link, put, table, taskPath, when } from "../dom.js";

const STATES = ["", "blocked", "pending", "in_progress", "parked", "completed", "failed", "cancelled"];

export async function render(root, _params, { navigate, query }) {
  const state = query.get("state") || "";
  const type = query.get("type") || "";
  const search = query.get("q") || "";
  const cursor = query.get("cursor") || "";
  const params = new URLSearchParams({ limit: "50" });
  if (state) params.set("state", state);
  if (type) params.set("task_type", type);
  if (search) params.set("id_contains", search);
  if (cursor) params.set("cursor", cursor);
  const found = await api.get(`/tasks?${params}`);
  const items = found.items;
  const form = h("form", { class: "filters", id: "task-filters" },
    h("label", {}, "State ", h("select", { name: "state" }, STATES.map((s) => h("option", { value: s, selected: s === state }, s || "any")))),
    h("label", {}, "Type ", h("input", { name: "type", value: type, placeholder: "any" })),
    h("label", {}, "Id contains ", h("input", { name: "q", value: search, type: "search" })),
    h("button", { type: "submit" }, "Filter"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) next.set(key, value);
    navigate(`/tasks${next.size ? `?${next}` : ""}`);
  });
  const more = new URLSearchParams(query);
  if (found.next_cursor) more.set("cursor", found.next_cursor);
  put(root,
    h("h1", {}, "Tasks"),
    form,
    items.length
      ? table(["task", "type", "state", "agent", "attempts", "submitted"], items.map((t) => [
        link(taskPath(t.task_id), t.task_id), t.task_type, badge(t.state), t.agent_id || "–", `${t.attempts}`, when(t.created_at),
      ]), { id: "tasks" })
      : h("p", { class: "muted" }, "No task matches."),
    h("nav", { class: "pager" },
      cursor ? link(`/tasks?${new URLSearchParams([...query].filter(([k]) => k !== "cursor"))}`, "⟵ newest") : null,
      found.next_cursor ? link(`/tasks?${more}`, "older ⟶") : null),
  );
}
