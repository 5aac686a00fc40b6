// Overview: the health verdict with its reasons, the last hour's figures as charts, alerts, counts by state.

import { api } from "../api.js";
import { lineChart } from "../charts.js";
import { badge, h, number, percent, put, section, seconds, table, when } from "../dom.js";

export async function render(root) {
  const [health, series, alerts, counts] = await Promise.all([
    api.get("/health"),
    api.get("/performance/series?window=1h&points=12"),
    api.get("/alerts?limit=20"),
    api.get("/counts"),
  ]);
  const points = series.items;
  const times = points.map((p) => p.at);
  const charts = h("div", { class: "charts" },
    lineChart("Throughput (tasks/s)", times, points.map((p) => (p.completed + p.failed ? p.throughput : null)), (v) => number(v, 3)),
    lineChart("Queue wait p95", times, points.map((p) => p.latency.queue_wait.p95), seconds),
    lineChart("Run time p95", times, points.map((p) => p.latency.run_time.p95), seconds),
    lineChart("Error rate", times, points.map((p) => (p.completed + p.failed ? p.error_rate : null)), percent),
  );
  const components = Object.entries(health.components).map(([name, c]) => [
    name, badge(c.status), c.reasons.length ? h("ul", { class: "reasons" }, c.reasons.map((r) => h("li", {}, r))) : h("span", { class: "muted" }, "no problem"),
  ]);
  const stateCounts = (byState) => {
    const entries = Object.entries(byState);
    return entries.length ? h("ul", { class: "counts" }, entries.map(([state, n]) => h("li", {}, badge(state), h("strong", {}, n)))) : h("p", { class: "muted" }, "none yet");
  };
  put(root,
    h("h1", {}, "Overview ", badge(health.status)),
    h("p", { class: "muted" }, `checked ${when(health.checked_at)}`),
    section("Health", table(["component", "verdict", "reasons"], components, { id: "health" })),
    section("The last hour", charts),
    h("div", { class: "columns" },
      section("Tasks by state", stateCounts(counts.tasks)),
      section("Runs by state", stateCounts(counts.runs)),
    ),
    section("Alerts", alerts.items.length
      ? table(["when", "source", "subject", "message"], alerts.items.map((a) => [when(a.at), a.source, a.subject || "–", a.message]), { id: "alerts" })
      : h("p", { class: "muted" }, "No alert has fired.")),
  );
}
