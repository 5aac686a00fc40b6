// Dead letters: tasks parked for a person, replayed or dropped from here.

import { api, q } from "../api.js";
import { badge, h, link, notice, put, table, taskPath, when } from "../dom.js";

export async function render(root, _params, { canWrite }) {
  const draw = async (message) => {
    const parked = (await api.get("/dlq")).items;
    const act = (label, cls, call) => {
      const button = h("button", { type: "button", class: cls }, label);
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          await call();
          await draw(`${label}: done.`);
        } catch (error) {
          await draw(error.message);
        }
      });
      return button;
    };
    const columns = ["task", "type", "state", "parked", "error"];
    if (canWrite) columns.push("");
    put(root,
      h("h1", {}, "Dead letters"),
      message ? notice(message, "info") : null,
      parked.length
        ? table(columns, parked.map((t) => {
          const cells = [link(taskPath(t.task_id), t.task_id), t.task_type, badge(t.state), when(t.parked_at), t.error ? `${t.error.type}: ${t.error.message}` : "–"];
          if (canWrite) {
            cells.push(h("span", { class: "actions" },
              act("Replay", "replay", () => api.post(`/dlq/${q(t.task_id)}/replay`, {})),
              act("Drop", "danger drop", () => api.del(`/dlq/${q(t.task_id)}`, { reason: "dropped from the dashboard" }))));
          }
          return cells;
        }), { id: "dead-letters" })
        : h("p", { class: "muted" }, "Nothing is parked."),
    );
  };
  await draw();
}
