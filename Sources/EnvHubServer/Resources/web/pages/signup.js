// Open sign-up (when the hub allows it): an account, then signed in at once.
import { api } from "../api.js";
import { h, field, errorBox, showError, clearError } from "../dom.js";
import { safeNext } from "./login.js";

export async function render({ main, signedIn }) {
  const next = safeNext(new URLSearchParams(location.search).get("next"));
  const status = await api.get("/api/status");
  if (!status.openSignup) {
    main.append(h("div", { class: "card narrow" }, h("h1", {}, "Sign-up is closed"),
      h("p", {}, "Ask an admin of this hub to create an account for you."), h("p", {}, h("a", { href: "/login" }, "Back to sign in"))));
    return;
  }
  const username = h("input", { name: "username", autocomplete: "username", required: true });
  const displayName = h("input", { name: "displayName", autocomplete: "name" });
  const password = h("input", { name: "password", type: "password", autocomplete: "new-password", required: true, minlength: 8 });
  const error = errorBox();
  const submit = h("button", { type: "submit" }, "Create account");
  const form = h("form", { class: "card narrow" }, h("h1", {}, "Create an envhub account"),
    field("User name", username, "Lowercase letters, digits and dashes."), field("Display name", displayName),
    field("Password", password, "At least 8 characters."), error, h("div", { class: "actions" }, submit),
    h("p", { class: "muted" }, "Have an account? ", h("a", { href: "/login" }, "Sign in")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    clearError(error);
    try {
      const session = await api.post("/api/auth/register",
        { username: username.value.trim(), password: password.value, displayName: displayName.value.trim() || null }, { expect401: true });
      signedIn(session.user, next);
    } catch (failure) {
      showError(error, failure, "Could not create the account");
    } finally {
      submit.disabled = false;
    }
  });
  main.append(form);
  username.focus();
}
