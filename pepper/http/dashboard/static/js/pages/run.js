// A run: its steps as a graph coloured by state, a Gantt timeline by agent with every attempt, the critical
// path, planned beside actual; it follows the event stream while the run goes on.

import { api, listen } from "../api.js";
import { dagChart, ganttChart } from "../charts.js";
import { badge, h, link, notice, put, section, seconds, table, taskPath, when } from "../dom.js";

export async function render(root, [runId], { me, canWrite, navigate }) {
  const [run, timeline] = await Promise.all([api.get(`/runs/${encodeURIComponent(runId)}`), api.get(`/runs/${encodeURIComponent(runId)}/timeline`)]);
  // Keyed by step and task ids in Maps: an id such as "__proto__" or "constructor" is an id like any other.
  const steps = new Map();
  const byTask = new Map();
  const dependencies = new Map(Object.entries(timeline.dependencies));
  for (const [step, status] of Object.entries(run.steps)) {
    steps.set(step, { state: status.state, dependencies: dependencies.get(step) || [], onclick: () => navigate(taskPath(status.task_id)) });
    byTask.set(status.task_id, step);
  }
  for (const [step, deps] of dependencies) {
    if (!steps.has(step)) steps.set(step, { state: "waiting", dependencies: deps });
  }
  const graph = dagChart(steps, timeline.critical_path);
  const state = h("span", { id: "run-state" }, badge(run.state));
  const progress = h("span", { id: "run-progress", class: "muted" });
  const ganttSlot = h("div", { class: "scroll", id: "gantt" }, ganttChart(timeline));
  const compare = h("div", { id: "planned-vs-actual" }, comparison(timeline));
  const message = h("div");
  const actions = h("div", { class: "actions" });
  const drawActions = (runState) => {
    put(actions);
    if (!canWrite || runState !== "running") return;
    const cancel = h("button", { type: "button", class: "danger", id: "cancel-run" }, "Cancel run");
    cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      try {
        await api.post(`/runs/${encodeURIComponent(runId)}/cancel`, { reason: "cancelled from the dashboard" });
      } catch (error) {
        put(message, notice(error.message));
      }
    });
    actions.append(cancel);
  };
  drawActions(run.state);
  const approvals = h("div", { id: "approvals" });
  const drawApprovals = async (runState) => {
    if (runState !== "running") {
      put(approvals);
      return;
    }
    let waiting = [];
    try {
      waiting = (await api.get(`/runs/${encodeURIComponent(runId)}/approvals`)).approvals.filter((a) => a.decision === null);
    } catch {
      return; // the next refresh tries again
    }
    put(approvals, ...waiting.map((approval) => approvalPanel(approval, canWrite, me, message)));
  };
  drawApprovals(run.state);
  const stepTable = h("div", { id: "steps" }, stepsTable(run.steps));
  put(root,
    h("h1", {}, "Run ", h("code", {}, runId), " ", state, " ", progress),
    h("p", { class: "muted" }, `${run.workflow} · started ${when(run.created_at)}`),
    message, actions, approvals,
    section("Steps", h("div", { class: "scroll" }, graph.svg), h("p", { class: "legend muted" }, "outlined: the critical path")),
    section("Timeline by agent", ganttSlot, h("p", { class: "legend muted" }, "thin bars: the planned slots; striped: an attempt that failed and was retried")),
    section("Planned and actual", compare),
    section("Step list", stepTable),
  );

  // Live: states from the event stream at once; the timeline and the table again, at most twice a second, and
  // each time the stream opens (what changed while none was open is read again).
  let pending = null;
  const refresh = () => {
    if (pending) return;
    pending = window.setTimeout(async () => {
      pending = null;
      try {
        const [fresh, again] = await Promise.all([api.get(`/runs/${encodeURIComponent(runId)}/timeline`), api.get(`/runs/${encodeURIComponent(runId)}`)]);
        put(ganttSlot, ganttChart(fresh));
        put(compare, comparison(fresh));
        put(stepTable, stepsTable(again.steps));
        for (const [step, status] of Object.entries(again.steps)) graph.paint(step, status.state);
        put(state, badge(again.state));
        drawActions(again.state);
        drawApprovals(again.state);
      } catch {
        // the next event tries again
      }
    }, 500);
  };
  const stop = listen(`?run=${encodeURIComponent(runId)}`, {
    task: (event) => {
      const step = byTask.get(event.task_id) ?? event.task_id.slice(runId.length + 1);
      graph.paint(step, event.state);
      refresh();
    },
    run: (event) => {
      put(state, badge(event.state));
      put(progress, `${event.done} of ${event.total} steps ended`);
      drawActions(event.state);
      refresh();
    },
  }, () => {
    put(progress); // the count the last event gave may be out of date: the next event says it again
    refresh();
  });
  return () => {
    stop();
    if (pending) window.clearTimeout(pending);
  };
}

function stepsTable(stepsById) {
  return table(["step", "state", "agent", "attempts", "took"], Object.entries(stepsById).map(([step, t]) => [
    h("a", { href: taskPath(t.task_id) }, step), badge(t.state), t.agent_id || "–", `${t.attempts}`,
    t.started_at && t.finished_at ? seconds(t.finished_at - t.started_at) : "–",
  ]));
}

function comparison(timeline) {
  const actual = new Map();
  for (const bar of timeline.bars) {
    const current = actual.get(bar.step_id);
    if (!current || bar.attempt >= current.attempt) actual.set(bar.step_id, bar);
  }
  const took = timeline.finished_at ? timeline.finished_at - timeline.created_at : null;
  const head = h("p", {},
    `critical path ${seconds(timeline.critical_path_length)}: ${timeline.critical_path.join(" → ") || "–"}`,
    timeline.planned_makespan !== null && timeline.planned_makespan !== undefined
      ? ` · planned ${seconds(timeline.planned_makespan)} (no schedule beats ${seconds(timeline.lower_bound)}), ${took === null ? "running" : `took ${seconds(took)}`}`
      : " · no plan was made for this run");
  const planned = Object.entries(timeline.planned);
  if (!planned.length) return head;
  return h("div", {}, head, table(["step", "planned agent", "planned", "actual agent", "actual"], planned.map(([step, p]) => {
    const bar = actual.get(step);
    return [step, p.agent_id, seconds(p.end - p.start) + (timeline.assumed.includes(step) ? " (assumed)" : ""),
      bar ? bar.agent_id || "–" : "–", bar && bar.end ? seconds(bar.end - bar.start) : "–"];
  })));
}

// A step waiting for a person: who may decide and until when; with a write token, approve or reject it. The one
// who decides is the signed-in token's name (the server records no other): shown, never typed in.
function approvalPanel(approval, canWrite, me, message) {
  const who = approval.approvers.length ? approval.approvers.join(" or ") : "anyone";
  const text = h("p", {}, "Step ", h("code", {}, approval.step_id), ` waits for approval by ${who} until ${when(approval.deadline)}`);
  const panel = h("div", { class: "approval", id: `approval-${approval.step_id}` }, text);
  if (!canWrite) return panel;
  const by = h("span", { class: "muted", id: `decider-${approval.step_id}`, title: "the signed-in token's name" }, `deciding as ${me.name}`);
  const reason = h("input", { type: "text", name: "reason", placeholder: "reason (optional)", "aria-label": "reason" });
  const decide = (decision) => async () => {
    for (const button of panel.querySelectorAll("button")) button.disabled = true;
    try {
      await api.post(`/runs/${encodeURIComponent(approval.run_id)}/steps/${encodeURIComponent(approval.step_id)}/approve`,
        { decision, reason: reason.value || null });
      put(panel, h("p", {}, "Step ", h("code", {}, approval.step_id), decision === "approve" ? " approved" : " rejected"));
    } catch (error) {
      put(message, notice(error.message));
      for (const button of panel.querySelectorAll("button")) button.disabled = false;
    }
  };
  const approve = h("button", { type: "button", id: `approve-${approval.step_id}` }, "Approve");
  const reject = h("button", { type: "button", class: "danger", id: `reject-${approval.step_id}` }, "Reject");
  approve.addEventListener("click", decide("approve"));
  reject.addEventListener("click", decide("reject"));
  panel.append(h("div", { class: "actions" }, by, reason, approve, reject));
  return panel;
}
