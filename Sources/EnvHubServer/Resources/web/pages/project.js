// One project: its environment, its settings, its logs and (for agent templates) its agent.
import { api, paths, stream } from "../api.js";
import { h, field, errorBox, showError, clearError } from "../dom.js";
import { environmentView } from "./environment.js";
import { agentPanel } from "./agent.js";

export async function render({ main, params, navigate, user }) {
  const [owner, name] = params;
  const [project, { templates }] = await Promise.all([api.get(paths.project(owner, name)), api.get("/api/templates")]);
  const template = templates.find((candidate) => candidate.name === project.template);
  // An admin on another user's project may be kept out of its app (ENVHUB_ADMIN_APP_ACCESS).
  const mayOpen = project.owner === user.username || (await api.get("/api/status")).adminAppAccess;
  const leaving = [];
  const environment = environmentView(project, template, {
    mayOpen,
    onDeleted: () => navigate("/projects"),
    onChange: (changed) => agent?.stateChanged(changed.state),
  });
  leaving.push(() => environment.close());
  const agent = template?.messagePath ? agentPanel(project) : null;
  if (agent) leaving.push(() => agent.close());
  const logs = logViewer(project);
  leaving.push(() => logs.close());
  main.append(
    h("p", {}, h("a", { href: "/projects" }, "← All projects")),
    h("h1", {}, `${project.owner}/${project.name}`),
    h("p", { class: "muted" }, template ? `${template.title}: ${template.description}` : project.template),
    h("section", { class: "card", "aria-label": "Environment" }, environment.element),
    agent?.element,
    settingsForm(project, templates, navigate),
    logs.element);
  return () => leaving.forEach((leave) => leave());
}

function settingsForm(project, templates, navigate) {
  const name = h("input", { name: "name", value: project.name, required: true, pattern: "[a-z]([a-z0-9\\-]*[a-z0-9])?" });
  const template = h("select", { name: "template" },
    templates.map((candidate) => h("option", { value: candidate.name, selected: candidate.name === project.template }, candidate.title)));
  const description = h("textarea", { name: "description", rows: 3, maxlength: 2000 }, project.description);
  const autoStart = h("input", { type: "checkbox", name: "autoStart", checked: project.autoStart });
  const error = errorBox();
  const saved = h("span", { class: "muted", role: "status" });
  const submit = h("button", { type: "submit" }, "Save");
  const form = h("form", { class: "card", "aria-labelledby": "settings-title" },
    h("h2", { id: "settings-title" }, "Settings"),
    field("Name", name, "Renaming or changing the template needs the environment stopped."),
    field("Template", template), field("Description", description),
    h("label", { class: "check" }, autoStart, " Start when I open the app while it is stopped"),
    error, h("div", { class: "actions" }, submit, saved));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    clearError(error);
    saved.textContent = "";
    const change = { description: description.value, autoStart: autoStart.checked };
    if (name.value.trim() !== project.name) change.name = name.value.trim();
    if (template.value !== project.template) change.template = template.value;
    try {
      const updated = await api.patch(paths.project(project.owner, project.name), change);
      if (updated.name !== project.name || updated.template !== project.template) {
        navigate(`/projects/${encodeURIComponent(updated.owner)}/${encodeURIComponent(updated.name)}`, { replace: true });
      } else {
        saved.textContent = "Saved.";
      }
    } catch (failure) {
      showError(error, failure, "Could not save");
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/** The components' output, the last 200 lines; "Follow" keeps appending what comes. */
function logViewer(project) {
  const output = h("pre", { class: "logs", tabindex: 0, "aria-label": "Log output" });
  const error = errorBox();
  let controller = null;
  const toggle = h("button", { type: "button", class: "secondary", "aria-pressed": "false", onclick: () => (controller ? stop() : start()) }, "Follow");
  const element = h("section", { class: "card", "aria-labelledby": "logs-title" },
    h("div", { class: "section-head" }, h("h2", { id: "logs-title" }, "Logs"), toggle), error, output);

  function append(text) {
    const atBottom = output.scrollTop + output.clientHeight >= output.scrollHeight - 8;
    output.append(text);
    if (atBottom) output.scrollTop = output.scrollHeight;
  }

  async function start() {
    controller = new AbortController();
    toggle.textContent = "Stop following";
    toggle.setAttribute("aria-pressed", "true");
    clearError(error);
    output.textContent = "";
    try {
      await stream("GET", `${paths.project(project.owner, project.name)}/logs?tail=200&follow=true`,
        { signal: controller.signal, onChunk: append });
    } catch (failure) {
      showError(error, failure, "Could not read the logs");
    }
    stop();
  }

  function stop() {
    controller?.abort();
    controller = null;
    toggle.textContent = "Follow";
    toggle.setAttribute("aria-pressed", "false");
  }

  api.get(`${paths.project(project.owner, project.name)}/logs?tail=200`)
    .then((text) => { if (!controller) output.textContent = text || "(no output yet)"; })
    .catch((failure) => showError(error, failure, "Could not read the logs"));
  return { element, close: stop };
}
