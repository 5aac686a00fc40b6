// Sign in with a token: the form posts it to the server, which keeps it in an HttpOnly cookie (never in a URL).

import { h, notice, put } from "../dom.js";

const PROBLEMS = {
  token: "That token is unknown or was revoked.",
  origin: "Sign in from this page.",
};

export async function render(root, _params, { query }) {
  const problem = PROBLEMS[query.get("error")];
  put(root,
    h("section", { class: "card sign-in" },
      h("h1", {}, "Sign in"),
      problem ? notice(problem) : null,
      h("form", { method: "post", action: "/session", id: "sign-in" },
        h("label", { for: "token" }, "Token"),
        h("input", { id: "token", name: "token", type: "password", autocomplete: "current-password", required: true, placeholder: "pepper_…" }),
        h("button", { type: "submit" }, "Sign in")),
      h("p", { class: "muted" }, "Make one with ", h("code", {}, "pepper token create --scope read --name NAME"), "."),
    ),
  );
}
