// A task: its state, why it waits, attempts, errors with tracebacks, its log, result, feedback; cancel and rate it.

import { api, q } from "../api.js";
import { badge, h, json, link, notice, put, runPath, section, seconds, taskPath, when } from "../dom.js";

const FINAL = new Set(["completed", "failed", "cancelled"]);
// The ids pepper gives runs: a slug of the workflow's name, then ten hexadecimal digits (never a '/').
const RUN_ID = /^[A-Za-z0-9_.-]{1,40}-[0-9a-f]{10}$/;

/** The run whose step (or item) the task is, as the API says: a task of a run has an id "<run id>/...", and a
 * plain task's id may hold a '/' too, so the run is named only once the API knows it. Null for any other task. */
async function runOf(taskId) {
  const slash = taskId.indexOf("/");
  const runId = slash > 0 ? taskId.slice(0, slash) : "";
  if (!RUN_ID.test(runId)) return null; // no run has an id of that shape: nothing to ask
  try {
    await api.get(`/runs/${encodeURIComponent(runId)}`);
    return runId;
  } catch {
    return null; // no such run (404), or it cannot be told now: the task's page is drawn without it
  }
}

export async function render(root, [taskId], { canWrite }) {
  const run = runOf(taskId);
  const draw = async (message) => {
    const [task, errors, log, runId] = await Promise.all([
      api.get(`/tasks/${q(taskId)}`), api.get(`/tasks/${q(taskId)}/errors`),
      api.get(`/tasks/${q(taskId)}/logs`).catch(() => null), run,
    ]);
    const actions = [];
    if (canWrite && !FINAL.has(task.state)) {
      const cancel = h("button", { type: "button", class: "danger", id: "cancel-task" }, "Cancel task");
      cancel.addEventListener("click", async () => {
        cancel.disabled = true;
        try {
          const answer = await api.post(`/tasks/${q(taskId)}/cancel`, { reason: "cancelled from the dashboard" });
          await draw(answer.cancelled ? "Cancelled." : "It had already finished.");
        } catch (error) {
          await draw(error.message);
        }
      });
      actions.push(cancel);
    }
    const facts = [
      ["type", task.task_type], ["priority", String(task.priority)], ["agent", task.agent_id || "–"],
      ["attempts", `${task.attempts} of ${task.max_retries + 1}`], ["submitted", when(task.created_at)],
      ["started", when(task.started_at)], ["finished", when(task.finished_at)],
      ["took", task.started_at && task.finished_at ? seconds(task.finished_at - task.started_at) : "–"],
      ["dependencies", task.dependencies.length ? h("span", {}, task.dependencies.map((d) => h("span", {}, link(taskPath(d), d), " "))) : "–"],
    ];
    if (task.reason) facts.push(["reason", task.reason]);
    if (runId) facts.push(["run", link(runPath(runId), runId)]);
    put(root,
      h("h1", {}, "Task ", h("code", {}, task.task_id), " ", badge(task.state)),
      message ? notice(message, "info") : null,
      actions.length ? h("div", { class: "actions" }, actions) : null,
      section("Facts", h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))),
      task.waiting_on && task.waiting_on.length
        ? section("Why it waits", h("ul", { id: "waiting-on" }, task.waiting_on.map((w) => h("li", {}, h("code", {}, w.kind), " ", w.message))))
        : null,
      task.state === "completed" ? section("Result", json(task.result)) : null,
      task.error ? section("Error", h("p", {}, h("strong", {}, task.error.type), `: ${task.error.message}`)) : null,
      section(`Errors (${errors.items.length})`, errors.items.length
        ? h("div", { id: "errors" }, errors.items.map((e) => h("details", { class: "error", open: true },
          h("summary", {}, `attempt ${e.attempt} · ${when(e.at)} · ${e.type}: ${e.message} → ${e.action}`),
          e.traceback ? h("pre", { class: "traceback" }, e.traceback) : h("p", { class: "muted" }, "no traceback"))))
        : h("p", { class: "muted" }, "No error.")),
      logSection(log),
      task.state === "completed" ? feedback(taskId, canWrite, draw) : null,
    );
  };
  await draw();
}

function logSection(log) {
  if (!log || !log.attempt) return section("Log", h("p", { class: "muted" }, "It has not run yet."));
  const title = `Log of attempt ${log.attempt}${log.ended ? "" : " (still running)"}`;
  return section(title, log.text
    ? h("pre", { id: "task-log", class: "log" }, log.text)
    : h("p", { class: "muted" }, "Nothing written."));
}

function feedback(taskId, canWrite, draw) {
  if (!canWrite) return null;
  const form = h("form", { id: "feedback", class: "filters" },
    h("label", {}, "Rating ", h("select", { name: "rating" }, [5, 4, 3, 2, 1].map((n) => h("option", { value: n }, `${n}`)))),
    h("label", {}, "Comment ", h("input", { name: "comment", maxlength: 500 })),
    h("button", { type: "submit" }, "Rate"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    try {
      await api.post(`/tasks/${q(taskId)}/feedback`, { rating: Number(data.get("rating")), comment: data.get("comment") || null });
      await draw("Thank you: the agent learns from the rating.");
    } catch (error) {
      await draw(error.message);
    }
  });
  return section("Rate this task", form);
}
