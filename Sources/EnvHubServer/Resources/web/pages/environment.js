// One project's environment as a live view: state badge, start progress with step
// messages, the failure reason, and Start / Stop / Open / Delete. Used by the projects list
// and by a project's own page.
import { api, follow, paths } from "../api.js";
import { h, fill, badge, errorBox, showError, clearError, confirmDialog } from "../dom.js";

const settled = new Set(["active", "inactive", "failed"]);

/**
 * Returns `{element, update(project), close()}`. While the environment is on its way
 * somewhere (starting, stopping, deleting) it follows the project's events, so the badge
 * changes the moment the hub says so; settled projects hold no connection (a browser
 * allows only six per site). `mayOpen`: the viewer may open the app (false for an admin on
 * another user's project when the hub keeps admins out of users' apps).
 */
export function environmentView(initial, template, { onDeleted, onChange, mayOpen = true } = {}) {
  let project = initial;
  let stopFollowing = null;
  let steps = 0;
  const totalSteps = 3 * Math.max(1, template?.components?.length ?? 1);

  const badgeSlot = h("span", { class: "badge-slot" });
  const step = h("span", { class: "step", role: "status", "aria-live": "polite" });
  const bar = h("progress", { max: totalSteps, value: 0, hidden: true, "aria-label": `Starting ${project.name}` });
  const reason = h("pre", { class: "reason", hidden: true });
  const error = errorBox();
  const start = h("button", { type: "button", onclick: () => act("activate") }, "Start");
  const stop = h("button", { type: "button", class: "secondary", onclick: () => act("deactivate") }, "Stop");
  const isDesktop = project.template === "desktop";
  const open = h("a", {
    class: "button", href: paths.app(project.owner, project.name), target: "_blank", rel: "noopener",
  }, isDesktop ? "Open desktop" : "Open app");
  const remove = h("button", { type: "button", class: "danger", onclick: removeProject }, "Delete");
  const element = h("div", { class: "environment" },
    h("div", { class: "status-line" }, badgeSlot, step), bar, reason,
    h("div", { class: "actions" }, start, stop, open, remove), error);

  function draw() {
    fill(badgeSlot, badge(project.state));
    const running = project.state === "active";
    start.hidden = !(project.state === "inactive" || project.state === "failed");
    stop.hidden = !(project.state === "active" || project.state === "starting");
    open.hidden = !running || !mayOpen;
    remove.disabled = project.state === "deleting";
    reason.hidden = !project.stateReason;
    reason.textContent = project.stateReason ? `Why: ${project.stateReason}` : "";
    bar.hidden = project.state !== "starting";
    if (project.state !== "starting") steps = 0;
    bar.value = steps;
    if (settled.has(project.state)) step.textContent = "";
    if (settled.has(project.state)) unfollow(); else watch();
  }

  function watch() {
    if (stopFollowing) return;
    const base = paths.project(project.owner, project.name);
    stopFollowing = follow(`${base}/events`, {
      state: (event) => {
        step.textContent = event.message;
        if (event.state && event.state !== project.state) {
          project = { ...project, state: event.state };
          draw();
          if (settled.has(event.state)) refresh();
          onChange?.(project);
        }
      },
      progress: (event) => {
        step.textContent = event.message;
        if (!event.position) steps = Math.min(totalSteps, steps + 1);
        bar.value = steps;
      },
    }, (source) => {
      if (source.readyState === EventSource.CLOSED) {
        stopFollowing = null;
        refresh();
      } else {
        step.textContent = "Lost contact with envhub; reconnecting…";
      }
    });
  }

  function unfollow() {
    stopFollowing?.();
    stopFollowing = null;
  }

  async function refresh() {
    try {
      update(await api.get(paths.project(project.owner, project.name)));
    } catch (failure) {
      if (failure.status === 404) return onDeleted?.(project);
      showError(error, failure, "Could not read the project");
    }
  }

  async function act(action) {
    clearError(error);
    const button = action === "activate" ? start : stop;
    button.disabled = true;
    try {
      const answer = await api.post(`${paths.project(project.owner, project.name)}/${action}`);
      update({ ...project, ...answer });
      step.textContent = action === "activate" ? "Starting…" : "Stopping…";
    } catch (failure) {
      showError(error, failure, action === "activate" ? "Could not start" : "Could not stop");
    } finally {
      button.disabled = false;
    }
  }

  async function removeProject() {
    if (!(await confirmDialog(`Delete the project ${project.name}? Its files and conversation go with it.`))) return;
    clearError(error);
    try {
      const answer = await api.delete(paths.project(project.owner, project.name));
      if (answer?.state === "deleting") {
        update({ ...project, state: "deleting" });
        step.textContent = "Stopping and deleting…";
      } else {
        unfollow();
        onDeleted?.(project);
      }
    } catch (failure) {
      showError(error, failure, "Could not delete");
    }
  }

  function update(next) {
    const changed = next.state !== project.state;
    project = next;
    draw();
    if (changed) onChange?.(project);
  }

  draw();
  return { element, update, close: unfollow, get project() { return project; } };
}
