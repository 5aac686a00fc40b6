// Runs: every run, newest first, a page at a time (the cursor pages on), and a form to start one from a workflow
// file's text.

import { api } from "../api.js";
import { badge, h, link, notice, put, runPath, section, seconds, table, when } from "../dom.js";

const EXAMPLE = `name: example
steps:
  - id: first
    type: echo
    inputs: {message: hello}
  - id: second
    type: echo
    needs: first
`;

export async function render(root, _params, { canWrite, navigate, query }) {
  const cursor = query.get("cursor") || "";
  const params = new URLSearchParams({ limit: "50" });
  if (cursor) params.set("cursor", cursor);
  const found = await api.get(`/runs?${params}`);
  const runs = found.items;
  let start = null;
  if (canWrite) {
    const text = h("textarea", { name: "workflow", rows: 10, spellcheck: "false", id: "workflow-text" }, EXAMPLE);
    const problem = h("div");
    start = h("form", { id: "start-run" }, h("label", { for: "workflow-text" }, "A workflow file (YAML)"), text, problem,
      h("button", { type: "submit" }, "Start run"));
    start.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const { run_id: runId } = await api.postText("/runs", text.value, "application/yaml");
        navigate(runPath(runId));
      } catch (error) {
        put(problem, notice(error.message));
      }
    });
  }
  put(root,
    h("h1", {}, "Runs"),
    runs.length
      ? table(["run", "workflow", "state", "started", "took"], runs.map((r) => [
        link(runPath(r.run_id), r.run_id), r.spec ? r.spec.name : r.workflow || "–", badge(r.state), when(r.created_at),
        r.finished_at ? seconds(r.finished_at - r.created_at) : "running",
      ]), { id: "runs" })
      : h("p", { class: "muted" }, cursor ? "No older run." : "No run yet."),
    h("nav", { class: "pager" },
      cursor ? link("/runs", "⟵ newest") : null,
      found.next_cursor ? link(`/runs?${new URLSearchParams({ cursor: found.next_cursor })}`, "older ⟶") : null),
    start ? section("Start a run", start) : null,
  );
}
