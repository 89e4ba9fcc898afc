// Your profile (display name, bio, email) and password.
import { api, paths } from "../api.js";
import { h, field, errorBox, showError, clearError } from "../dom.js";

export async function render({ main, user, setUser }) {
  const me = await api.get(paths.user(user.username));
  main.append(h("h1", {}, "Profile"), profileForm(me, setUser), passwordForm(me));
}

function profileForm(me, setUser) {
  const displayName = h("input", { name: "displayName", value: me.displayName, maxlength: 100, autocomplete: "name" });
  const email = h("input", { name: "email", type: "email", value: me.email ?? "", maxlength: 254, autocomplete: "email" });
  const bio = h("textarea", { name: "bio", rows: 4, maxlength: 2000 }, me.bio);
  const error = errorBox();
  const saved = h("span", { class: "muted", role: "status" });
  const submit = h("button", { type: "submit" }, "Save profile");
  const form = h("form", { class: "card", id: "profile", "aria-labelledby": "profile-title" },
    h("h2", { id: "profile-title" }, me.username, " ", h("span", { class: "badge" }, me.role)),
    field("Display name", displayName), field("Email", email, "Only you and admins see it."), field("Bio", bio),
    error, h("div", { class: "actions" }, submit, saved));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    clearError(error);
    saved.textContent = "";
    try {
      const updated = await api.patch(paths.user(me.username),
        { displayName: displayName.value.trim(), bio: bio.value, email: email.value.trim() });
      setUser(updated);
      saved.textContent = "Saved.";
    } catch (failure) {
      showError(error, failure, "Could not save the profile");
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function passwordForm(me) {
  const current = h("input", { name: "currentPassword", type: "password", required: true, autocomplete: "current-password" });
  const next = h("input", { name: "newPassword", type: "password", required: true, minlength: 8, autocomplete: "new-password" });
  const again = h("input", { name: "repeatPassword", type: "password", required: true, minlength: 8, autocomplete: "new-password" });
  const error = errorBox();
  const saved = h("span", { class: "muted", role: "status" });
  const submit = h("button", { type: "submit" }, "Change password");
  const form = h("form", { class: "card", id: "password", "aria-labelledby": "password-title" },
    h("h2", { id: "password-title" }, "Password"),
    field("Current password", current), field("New password", next, "At least 8 characters. Your other sessions are signed out."),
    field("New password again", again), error, h("div", { class: "actions" }, submit, saved));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError(error);
    saved.textContent = "";
    if (next.value !== again.value) return showError(error, new Error("the two new passwords differ"), "Could not change the password");
    submit.disabled = true;
    try {
      await api.post(`${paths.user(me.username)}/password`, { currentPassword: current.value, newPassword: next.value });
      form.reset();
      saved.textContent = "Password changed.";
    } catch (failure) {
      showError(error, failure, "Could not change the password");
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
