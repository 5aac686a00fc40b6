// Agents: every agent of a live worker, its host, what it takes, its capacity and load, its score and parts.

import { api } from "../api.js";
import { h, number, percent, put, table } from "../dom.js";

function load(agent) {
  const share = agent.capacity ? Math.min(agent.running / agent.capacity, 1) : 0;
  const meter = h("meter", { min: 0, max: agent.capacity || 1, value: agent.running, title: `${agent.running} of ${agent.capacity} running` });
  return h("span", { class: "load" }, meter, ` ${agent.running} / ${agent.capacity} running`, agent.queued ? `, ${number(agent.queued, 1)} queued` : "", h("span", { class: "sr-only" }, percent(share)));
}

function score(agent) {
  if (agent.score === null || agent.score === undefined) return "–";
  const parts = agent.score_parts;
  if (!parts) return number(agent.score, 3);
  return h("span", {}, h("strong", {}, number(agent.score, 3)),
    h("span", { class: "muted parts" }, ` success ${percent(parts.success)} · timeliness ${percent(parts.timeliness)} · rating ${parts.rating === null ? "–" : number(parts.rating, 2)}`));
}

export async function render(root) {
  const draw = async () => {
    const agents = (await api.get("/agents")).items;
    put(root,
      h("h1", {}, "Agents"),
      agents.length
        ? table(["agent", "worker · host", "task types", "skills", "load", "score (parts)", "resources"], agents.map((a) => [
          h("strong", {}, a.agent_id),
          h("span", {}, a.worker_id, h("br"), h("span", { class: "muted" }, `${a.hostname} · pid ${a.pid}`)),
          (a.task_types || []).join(", ") || "any",
          (a.skills || []).join(", ") || "–",
          load(a),
          score(a),
          Object.entries(a.resources || {}).map(([k, v]) => `${k} ${v}`).join(", ") || "–",
        ]), { id: "agents" })
        : h("p", { class: "muted" }, "No worker is online."),
    );
  };
  await draw();
  const timer = window.setInterval(() => draw().catch(() => {}), 1000);
  return () => window.clearInterval(timer);
}
