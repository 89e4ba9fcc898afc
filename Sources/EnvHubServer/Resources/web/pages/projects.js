// Your projects: each with its live environment, and a form to create one from a template.
import { api, paths } from "../api.js";
import { h, fill, field, errorBox, showError, clearError, when } from "../dom.js";
import { environmentView } from "./environment.js";

export async function render({ main, user }) {
  const [{ templates }, { projects }] = await Promise.all([api.get("/api/templates"), api.get(paths.projects(user.username))]);
  const byName = new Map(templates.map((template) => [template.name, template]));
  const views = new Map();
  const list = h("ul", { class: "projects", id: "projects", "aria-label": "Your projects" });
  const empty = h("p", { class: "muted" }, "No projects yet: create one below.");
  const listError = errorBox();

  function add(project) {
    const view = environmentView(project, byName.get(project.template), { onDeleted: (gone) => removeItem(gone.name) });
    const item = h("li", { class: "card project", "data-project": project.name },
      h("div", { class: "project-head" },
        h("h2", {}, h("a", { href: `/projects/${encodeURIComponent(project.owner)}/${encodeURIComponent(project.name)}` }, project.name)),
        h("span", { class: "muted" }, byName.get(project.template)?.title ?? project.template)),
      project.description ? h("p", { class: "description" }, project.description) : null,
      view.element);
    views.set(project.name, { view, item });
    list.append(item);
    empty.hidden = true;
  }

  function removeItem(name) {
    const entry = views.get(name);
    if (!entry) return;
    entry.view.close();
    entry.item.remove();
    views.delete(name);
    empty.hidden = views.size > 0;
  }

  // Changes made elsewhere (another tab, the idle culler, an admin) show up within 10 s.
  async function poll() {
    try {
      const { projects: latest } = await api.get(paths.projects(user.username));
      clearError(listError);
      const names = new Set(latest.map((project) => project.name));
      for (const name of [...views.keys()]) if (!names.has(name)) removeItem(name);
      for (const project of latest) {
        const entry = views.get(project.name);
        if (!entry) add(project);
        else if (entry.view.project.state !== project.state || entry.view.project.stateReason !== project.stateReason) entry.view.update(project);
      }
    } catch (failure) {
      showError(listError, failure, "Could not refresh the list");
    }
  }

  for (const project of projects) add(project);
  empty.hidden = projects.length > 0;
  const form = newProjectForm(user, templates, (project) => add(project));
  main.append(h("h1", {}, "Projects"), listError, empty, list, form);
  const timer = setInterval(poll, 10_000);
  return () => {
    clearInterval(timer);
    for (const { view } of views.values()) view.close();
  };
}

function newProjectForm(user, templates, created) {
  const name = h("input", { name: "name", required: true, maxlength: 40, pattern: "[a-z]([a-z0-9\\-]*[a-z0-9])?", autocomplete: "off" });
  const description = h("textarea", { name: "description", rows: 2, maxlength: 2000 });
  const picker = h("fieldset", { class: "templates" }, h("legend", {}, "Template"),
    templates.map((template, index) => h("label", { class: "template" },
      h("input", { type: "radio", name: "template", value: template.name, required: true, checked: index === 0 }),
      h("span", {}, h("strong", {}, template.title), " ", h("code", {}, template.name),
        h("small", { class: "muted" }, template.description)))));
  const error = errorBox();
  const submit = h("button", { type: "submit" }, "Create project");
  const form = h("form", { class: "card", id: "new-project", "aria-labelledby": "new-project-title" },
    h("h2", { id: "new-project-title" }, "New project"),
    field("Name", name, "Lowercase letters, digits and dashes; it becomes part of the app's address."),
    picker, field("Description (optional)", description), error, h("div", { class: "actions" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    clearError(error);
    try {
      const template = form.querySelector("input[name=template]:checked")?.value;
      const project = await api.post(paths.projects(user.username),
        { name: name.value.trim(), template, description: description.value.trim() || null });
      created(project);
      form.reset();
      name.focus();
    } catch (failure) {
      showError(error, failure, "Could not create the project");
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export { when };
