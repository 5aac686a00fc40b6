// Charts drawn as SVG from the API's figures: a small line chart, a run's graph, and its Gantt timeline.
// Layout only (where to put things); every number shown comes from the API.

import { clock, h, s, seconds } from "./dom.js";

/** A small line chart of `values` (null: no figure) over `times`, with its latest value as the title. */
export function lineChart(title, times, values, format) {
  const width = 280;
  const height = 80;
  const pad = 4;
  const known = values.filter((v) => v !== null && v !== undefined);
  const top = Math.max(...known, 0) || 1;
  const x = (i) => pad + (i * (width - 2 * pad)) / Math.max(values.length - 1, 1);
  const y = (v) => height - pad - ((height - 2 * pad) * v) / top;
  let d = "";
  values.forEach((v, i) => {
    if (v === null || v === undefined) return;
    d += `${d && values[i - 1] !== null && values[i - 1] !== undefined ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
  });
  const latest = known.length ? format(known[known.length - 1]) : "no data";
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "spark", role: "img", "aria-label": `${title}: ${latest}` },
    s("line", { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: "axis" }),
    d ? s("path", { d, class: "line" }) : null,
    values.map((v, i) => (v === null || v === undefined ? null
      : s("circle", { cx: x(i), cy: y(v), r: 2, class: "dot" }, s("title", {}, `${clock(times[i])}: ${format(v)}`)))),
  );
  return h("figure", { class: "chart" },
    h("figcaption", {}, h("span", {}, title), h("strong", {}, latest)),
    svg,
    h("div", { class: "chart-scale muted" }, h("span", {}, clock(times[0])), h("span", {}, known.length ? `max ${format(top)}` : ""), h("span", {}, clock(times[times.length - 1]))),
  );
}

const NODE_W = 132;
const NODE_H = 26;
const GAP_X = 44;
const GAP_Y = 10;

/** A run's steps (a Map of step id to {state, dependencies, onclick}) as a graph, left to right by depth; nodes
 * are coloured by state (updated by `paint`). Every table here is a Map: any step id is a key like another. */
export function dagChart(steps, critical) {
  const ids = [...steps.keys()];
  const depth = new Map();
  const visit = (id, seen = new Set()) => {
    if (depth.has(id)) return depth.get(id);
    if (seen.has(id)) return 0;
    seen.add(id);
    const deps = (steps.get(id).dependencies || []).filter((d) => steps.has(d));
    depth.set(id, deps.length ? 1 + Math.max(...deps.map((d) => visit(d, seen))) : 0);
    return depth.get(id);
  };
  ids.forEach((id) => visit(id));
  const columns = [];
  ids.forEach((id) => (columns[depth.get(id)] ||= []).push(id));
  const at = new Map();
  columns.forEach((column, c) => column.forEach((id, r) => {
    at.set(id, { x: 8 + c * (NODE_W + GAP_X), y: 8 + r * (NODE_H + GAP_Y) });
  }));
  const width = 16 + columns.length * (NODE_W + GAP_X) - GAP_X;
  const height = 16 + Math.max(...columns.map((c) => c.length), 1) * (NODE_H + GAP_Y) - GAP_Y;
  const onPath = new Set(critical || []);
  const edges = [];
  for (const id of ids) {
    for (const dep of steps.get(id).dependencies || []) {
      if (!at.has(dep)) continue;
      const a = at.get(dep);
      const b = at.get(id);
      const x1 = a.x + NODE_W;
      const y1 = a.y + NODE_H / 2;
      const x2 = b.x;
      const y2 = b.y + NODE_H / 2;
      const mid = (x1 + x2) / 2;
      const cls = onPath.has(id) && onPath.has(dep) ? "edge critical" : "edge";
      edges.push(s("path", { d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`, class: cls }));
    }
  }
  const nodes = new Map();
  const groups = ids.map((id) => {
    const step = steps.get(id);
    const { x, y } = at.get(id);
    const rect = s("rect", { x, y, width: NODE_W, height: NODE_H, rx: 5, class: `node st-${step.state}` });
    const label = id.length > 18 ? `${id.slice(0, 17)}…` : id;
    const title = s("title", {}, `${id}: ${step.state}`);
    nodes.set(id, { rect, title });
    const g = s("g", { class: onPath.has(id) ? "step critical" : "step", "data-step": id },
      title, rect, s("text", { x: x + 8, y: y + NODE_H / 2 + 4 }, label));
    g.addEventListener("click", () => step.onclick && step.onclick());
    return g;
  });
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "dag", role: "img", "aria-label": "the run's steps and their dependencies" },
    s("defs", {}), edges, groups);
  /** Show a step's new state. */
  const paint = (id, state) => {
    const node = nodes.get(id);
    if (!node) return;
    node.rect.setAttribute("class", `node st-${state}`);
    node.title.textContent = `${id}: ${state}`;
  };
  return { svg, paint };
}

/** A Gantt chart of a run's timeline: one row per agent, a bar per attempt (failed ones marked), the
 * critical path outlined, and each step's planned slot as a thin bar beneath. */
export function ganttChart(timeline) {
  const bars = timeline.bars;
  const origin = timeline.created_at;
  const planned = timeline.planned || {};
  const ends = bars.map((b) => (b.end ?? timeline.now) - origin);
  const plannedEnds = Object.values(planned).map((p) => p.end);
  const span = Math.max(...ends, ...plannedEnds, 0.001);
  const agents = [...new Set([...bars.map((b) => b.agent_id || "–"), ...Object.values(planned).map((p) => p.agent_id || "–")])].sort();
  const labelW = 130;
  const width = 900;
  const lane = 16;
  const plannedLane = 6;
  const critical = new Set(timeline.critical_path || []);
  // lanes inside an agent's row, so that attempts running at once do not hide each other
  const rows = agents.map((agent) => {
    const mine = bars.filter((b) => (b.agent_id || "–") === agent);
    const laneEnds = [];
    const placed = mine.map((b) => {
      const start = b.start - origin;
      const end = (b.end ?? timeline.now) - origin;
      let i = laneEnds.findIndex((e) => e <= start);
      if (i < 0) i = laneEnds.push(end) - 1; else laneEnds[i] = end;
      return { b, start, end, lane: i };
    });
    const mineplanned = Object.entries(planned).filter(([, p]) => (p.agent_id || "–") === agent);
    return { agent, placed, lanes: Math.max(laneEnds.length, 1), planned: mineplanned };
  });
  const x = (t) => labelW + (t / span) * (width - labelW - 10);
  let y = 22;
  const drawn = [];
  for (const row of rows) {
    const rowH = row.lanes * (lane + 2) + (row.planned.length ? plannedLane + 4 : 0) + 8;
    drawn.push(s("text", { x: 4, y: y + 13, class: "agent" }, row.agent.length > 18 ? `${row.agent.slice(0, 17)}…` : row.agent));
    drawn.push(s("line", { x1: 0, x2: width, y1: y + rowH - 4, y2: y + rowH - 4, class: "grid" }));
    for (const { b, start, end, lane: l } of row.placed) {
      const cls = ["bar", `st-${b.status}`, b.attempt > 1 || b.status === "failed" ? "retry" : "", critical.has(b.step_id) && (b.end === null || b.status === "completed") ? "critical" : ""].join(" ");
      drawn.push(s("rect", { x: x(start), y: y + l * (lane + 2), width: Math.max(x(end) - x(start), 2), height: lane, class: cls, "data-step": b.step_id, "data-attempt": b.attempt },
        s("title", {}, `${b.step_id} · attempt ${b.attempt} · ${b.status} · ${seconds(end - start)}${b.error ? `\n${b.error}` : ""}`)));
    }
    const py = y + row.lanes * (lane + 2) + 2;
    for (const [step, p] of row.planned) {
      drawn.push(s("rect", { x: x(p.start), y: py, width: Math.max(x(p.end) - x(p.start), 2), height: plannedLane, class: "bar planned" },
        s("title", {}, `${step} planned · ${seconds(p.end - p.start)}`)));
    }
    y += rowH;
  }
  const ticks = [];
  for (let i = 0; i <= 4; i += 1) {
    const t = (span * i) / 4;
    ticks.push(s("text", { x: x(t), y: 12, class: "tick", "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" }, `+${seconds(t)}`));
  }
  return s("svg", { viewBox: `0 0 ${width} ${y + 4}`, class: "gantt", role: "img", "aria-label": "timeline of the run by agent" }, ticks, drawn);
}
