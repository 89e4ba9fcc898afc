// Sign in, then back to `next` — only ever a path on this origin.
import { api } from "../api.js";
import { h, field, errorBox, showError, clearError } from "../dom.js";

/** `next` if it is a path on this origin ("/…", not "//host" or "/\host"), else /projects. */
export function safeNext(raw) {
  if (!raw || !raw.startsWith("/") || raw.startsWith("//") || raw.startsWith("/\\")) return "/projects";
  const url = new URL(raw, location.origin);
  if (url.origin !== location.origin || url.pathname === "/login") return "/projects";
  return url.pathname + url.search + url.hash;
}

export async function render({ main, signedIn }) {
  const next = safeNext(new URLSearchParams(location.search).get("next"));
  const username = h("input", { name: "username", autocomplete: "username", required: true, autofocus: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const error = errorBox();
  const submit = h("button", { type: "submit" }, "Sign in");
  const signup = h("p", { class: "muted", hidden: true }, "New here? ", h("a", { href: "/signup?next=" + encodeURIComponent(next) }, "Create an account"));
  const form = h("form", { class: "card narrow", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Sign in to envhub"),
    field("User name", username), field("Password", password), error,
    h("div", { class: "actions" }, submit), signup);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    clearError(error);
    try {
      const session = await api.post("/api/auth/login", { username: username.value.trim(), password: password.value }, { expect401: true });
      signedIn(session.user, next);
    } catch (failure) {
      showError(error, failure, "Could not sign in");
      password.select();
    } finally {
      submit.disabled = false;
    }
  });
  main.append(form);
  username.focus();
  api.get("/api/status").then((status) => { signup.hidden = !status.openSignup; }).catch(() => {});
}
