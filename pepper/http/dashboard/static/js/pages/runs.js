// Runs: the latest runs, and a form to start one from a workflow file's text.

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

export async function render(root, _params, { canWrite, navigate }) {
  const runs = (await api.get("/runs?limit=100")).items;
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
      : h("p", { class: "muted" }, "No run yet."),
    start ? section("Start a run", start) : null,
  );
}
