// Small helpers for building the pages without a framework.
import { describe } from "./api.js";

/** h("button", {type: "button", onclick}, "Save") → an element; null/false children are skipped. */
export function h(tag, attributes = {}, ...children) {
  const element = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.setAttribute("class", value);
    else if (name === "value") element.value = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces an element's children. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** A labelled form control: `<label>Text <input …></label>` with an optional hint. */
export function field(label, control, hint) {
  return h("label", { class: "field" }, h("span", {}, label), control, hint ? h("small", { class: "muted" }, hint) : null);
}

/** A place for one failure, read out by screen readers when it appears. */
export function errorBox() {
  return h("p", { class: "error", role: "alert", hidden: true });
}

export function showError(box, error, what) {
  box.textContent = what ? `${what}: ${describe(error)}` : describe(error);
  box.hidden = false;
}

export function clearError(box) {
  box.textContent = "";
  box.hidden = true;
}

/** The state of an environment as a coloured badge. */
export function badge(state) {
  return h("span", { class: `badge state-${state}`, "data-state": state }, state);
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

/** "3 minutes ago", with the exact time as a tooltip. */
export function when(iso) {
  if (!iso) return h("span", { class: "muted" }, "never");
  const date = new Date(iso);
  const seconds = Math.round((date - Date.now()) / 1000);
  const [amount, unit] = Math.abs(seconds) < 60 ? [seconds, "second"]
    : Math.abs(seconds) < 3600 ? [Math.round(seconds / 60), "minute"]
    : Math.abs(seconds) < 86400 ? [Math.round(seconds / 3600), "hour"]
    : [Math.round(seconds / 86400), "day"];
  return h("time", { datetime: iso, title: date.toLocaleString() }, relative.format(amount, unit));
}

/** Asks a yes/no question in a modal dialog; resolves true when confirmed. */
export function confirmDialog(question, confirmLabel = "Delete") {
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "confirm", "aria-label": question },
      h("p", {}, question),
      h("form", { method: "dialog", class: "actions" },
        h("button", { value: "cancel", class: "secondary" }, "Cancel"),
        h("button", { value: "confirm", class: "danger" }, confirmLabel)));
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "confirm");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** Runs `action` with `button` disabled, showing a failure in `box`. */
export async function busy(button, box, action) {
  button.disabled = true;
  if (box) clearError(box);
  try {
    return await action();
  } catch (error) {
    if (box) showError(box, error);
    else throw error;
  } finally {
    button.disabled = false;
  }
}
