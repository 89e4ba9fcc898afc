// For admins: every user, every environment (with a Stop button), and the hub's figures
// sampled every 5 s while the page is open, drawn as small charts.
import { api, paths } from "../api.js";
import { h, fill, field, errorBox, showError, clearError, badge, when, confirmDialog } from "../dom.js";
import { lineChart } from "../charts.js";

const sampleEvery = 5_000;
const keepSamples = 120; // ten minutes

export async function render({ main, user }) {
  if (user.role !== "admin") {
    main.append(h("h1", {}, "Admin"), h("p", { class: "error", role: "alert" }, "Only admins may see this page."));
    return;
  }
  const statsSection = h("section", { "aria-labelledby": "stats-title" }, h("h2", { id: "stats-title" }, "Figures"));
  const usersSection = h("section", { class: "card", "aria-labelledby": "users-title" });
  const envSection = h("section", { class: "card", "aria-labelledby": "env-title" });
  const usersTable = h("div");
  const listError = errorBox();
  usersSection.append(h("h2", { id: "users-title" }, "Users"), usersTable, newUserForm(() => reload()));
  main.append(h("h1", {}, "Admin"), listError, statsSection, envSection, usersSection);

  const samples = { active: [], messages: [] };
  const statsError = errorBox();
  const figures = h("dl", { class: "figures" });
  const charts = h("div", { class: "charts" });
  statsSection.append(statsError, h("div", { class: "card" }, figures), charts);
  let lastMessages = null;

  async function sample() {
    try {
      const stats = await api.get("/api/stats");
      clearError(statsError);
      const at = new Date();
      samples.active.push({ at, value: stats.projects.byState.active });
      samples.messages.push({ at, value: lastMessages === null ? 0 : Math.max(0, stats.messages - lastMessages) });
      lastMessages = stats.messages;
      for (const series of Object.values(samples)) series.splice(0, Math.max(0, series.length - keepSamples));
      const figure = (label, value) => h("div", {}, h("dt", {}, label), h("dd", {}, String(value)));
      fill(figures, figure("Users", stats.users), figure("Projects", stats.projects.total),
        figure("Active environments", stats.projects.byState.active), figure("Failed", stats.projects.byState.failed),
        figure("Chat rooms", stats.rooms), figure("Messages (24 h)", stats.messagesLast24h),
        figure("Online in chat", stats.usersOnline), figure("Agent replies now", stats.activeAgentStreams));
      fill(charts, lineChart("Active environments", samples.active),
        lineChart("Chat messages per 5 s", samples.messages));
    } catch (failure) {
      showError(statsError, failure, "Could not read the figures");
    }
  }

  // Tables are redrawn only when something changed, so keyboard focus is not lost every 10 s.
  const drawn = { users: "", projects: "" };
  async function reload() {
    try {
      const { users } = await api.get("/api/users");
      const lists = await Promise.all(users.map((account) => api.get(paths.projects(account.username))));
      const projects = lists.flatMap((list) => list.projects);
      if (JSON.stringify(users) !== drawn.users) drawUsers(usersTable, users, user, reload);
      if (JSON.stringify(projects) !== drawn.projects) drawEnvironments(envSection, projects, reload);
      drawn.users = JSON.stringify(users);
      drawn.projects = JSON.stringify(projects);
      clearError(listError);
    } catch (failure) {
      showError(listError, failure, "Could not read users and environments");
    }
  }

  await Promise.all([sample(), reload()]);
  const timers = [setInterval(sample, sampleEvery), setInterval(reload, 10_000)];
  return () => timers.forEach(clearInterval);
}

function drawEnvironments(section, projects, reload) {
  const error = errorBox();
  const rows = projects.map((project) => {
    const stop = h("button", { type: "button", class: "secondary small", onclick: async () => {
      stop.disabled = true;
      clearError(error);
      try {
        await api.post(`${paths.project(project.owner, project.name)}/deactivate`);
        await reload();
      } catch (failure) {
        showError(error, failure, `Could not stop ${project.owner}/${project.name}`);
        stop.disabled = false;
      }
    }, "aria-label": `Stop ${project.owner}/${project.name}` }, "Stop");
    const running = project.state === "active" || project.state === "starting";
    return h("tr", { "data-project": `${project.owner}/${project.name}` },
      h("td", {}, project.owner), h("td", {}, h("a", { href: `/projects/${encodeURIComponent(project.owner)}/${encodeURIComponent(project.name)}` }, project.name)),
      h("td", { class: "hide-narrow" }, project.template), h("td", {}, badge(project.state)),
      h("td", { class: "hide-narrow" }, when(project.lastActivity)), h("td", {}, running ? stop : ""));
  });
  fill(section, h("h2", { id: "env-title" }, "Environments"), error,
    projects.length === 0 ? h("p", { class: "muted" }, "No projects yet.") :
      h("div", { class: "table-scroll" }, h("table", { id: "environments" },
        h("thead", {}, h("tr", {}, ["Owner", "Project", "Template", "State", "Last activity", ""].map((title, index) =>
          h("th", { scope: "col", class: index === 2 || index === 4 ? "hide-narrow" : null }, title)))),
        h("tbody", {}, rows))));
}

function drawUsers(section, users, me, reload) {
  const error = errorBox();
  const rows = users.map((account) => {
    const isAdmin = account.role === "admin";
    const role = h("button", { type: "button", class: "secondary small", onclick: () => act(role, () =>
      api.patch(paths.user(account.username), { admin: !isAdmin })) }, isAdmin ? "Make user" : "Make admin");
    const remove = h("button", { type: "button", class: "danger small", onclick: async () => {
      if (await confirmDialog(`Delete the user ${account.username} and all their projects?`)) act(remove, () => api.delete(paths.user(account.username)));
    } }, "Delete");
    role.setAttribute("aria-label", `${isAdmin ? "Make user" : "Make admin"}: ${account.username}`);
    remove.setAttribute("aria-label", `Delete ${account.username}`);
    return h("tr", { "data-user": account.username },
      h("td", {}, account.username), h("td", { class: "hide-narrow" }, account.displayName),
      h("td", {}, account.role), h("td", { class: "hide-narrow" }, when(account.createdAt)),
      h("td", {}, account.username === me.username ? h("span", { class: "muted" }, "you") : h("span", { class: "actions" }, role, remove)));
  });

  async function act(button, action) {
    button.disabled = true;
    clearError(error);
    try {
      await action();
      await reload();
    } catch (failure) {
      showError(error, failure, "Could not change the user");
      button.disabled = false;
    }
  }

  fill(section, error,
    h("div", { class: "table-scroll" }, h("table", { id: "users" },
      h("thead", {}, h("tr", {}, ["User", "Display name", "Role", "Joined", ""].map((title, index) =>
        h("th", { scope: "col", class: index === 1 || index === 3 ? "hide-narrow" : null }, title)))),
      h("tbody", {}, rows))));
}

function newUserForm(reload) {
  const username = h("input", { name: "username", required: true, autocomplete: "off" });
  const password = h("input", { name: "password", type: "password", required: true, minlength: 8, autocomplete: "new-password" });
  const admin = h("input", { type: "checkbox", name: "admin" });
  const error = errorBox();
  const submit = h("button", { type: "submit" }, "Create user");
  const form = h("form", { id: "new-user", "aria-labelledby": "new-user-title" },
    h("h3", { id: "new-user-title" }, "New user"), field("User name", username), field("Password", password, "At least 8 characters."),
    h("label", { class: "check" }, admin, " Admin"), error, h("div", { class: "actions" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    clearError(error);
    try {
      await api.post("/api/users", { username: username.value.trim(), password: password.value, admin: admin.checked });
      form.reset();
      await reload();
    } catch (failure) {
      showError(error, failure, "Could not create the user");
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
