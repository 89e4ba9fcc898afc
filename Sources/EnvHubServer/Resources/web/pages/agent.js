// Talking to a project's agent (docs/agent.md): the conversation, and the reply shown token
// by token as the hub relays it. A reply already in flight (another tab, a reload) is followed.
import { api, paths, stream, EventStreamParser, describe } from "../api.js";
import { h, field, errorBox, showError, clearError } from "../dom.js";

export function agentPanel(project) {
  const base = `${paths.project(project.owner, project.name)}/messages`;
  const log = h("ol", { class: "conversation", "aria-live": "polite", "aria-label": "Conversation" });
  const input = h("textarea", { name: "message", rows: 2, required: true, maxlength: 32000, placeholder: "Try: help" });
  const send = h("button", { type: "submit" }, "Send");
  const error = errorBox();
  const hint = h("p", { class: "muted" });
  const form = h("form", { class: "agent-form" }, field("Message", input), h("div", { class: "actions" }, send), error);
  const element = h("section", { class: "card agent", "aria-labelledby": "agent-title" },
    h("h2", { id: "agent-title" }, "Agent"), hint, log, form);
  let controller = null;
  let state = project.state;

  function entry(role, text, extra = {}) {
    const content = h("div", { class: "content" }, text);
    const item = h("li", { class: `entry ${role}`, "data-role": role, ...extra },
      h("span", { class: "who" }, role === "user" ? "You" : "Agent"), content);
    log.append(item);
    item.scrollIntoView({ block: "nearest" });
    return { item, content };
  }

  function failed(reply, message) {
    reply.item.classList.add("failed");
    reply.item.append(h("p", { class: "error", role: "alert" }, `The reply failed: ${message}`));
  }

  function showStored(message) {
    if (message.role === "user") return entry("user", message.content);
    const reply = entry("assistant", message.content, { "data-status": message.status });
    if (message.status === "failed") failed(reply, message.error ?? "unknown error");
    if (message.status === "cancelled") reply.item.append(h("p", { class: "muted" }, "(cancelled: nobody was reading)"));
    return reply;
  }

  /** Reads one reply's events into an assistant entry as they arrive. */
  async function follow(method, path, body) {
    controller = new AbortController();
    send.disabled = true;
    let reply = null;
    let tokens = 0;
    const parser = new EventStreamParser(({ event, data }) => {
      const payload = JSON.parse(data);
      if (event === "start") {
        entry("user", payload.stored.content);
        reply = entry("assistant", "", { "data-status": "streaming" });
      } else if (event === "token") {
        reply ??= entry("assistant", "", { "data-status": "streaming" });
        reply.content.append(payload.text);
        reply.item.dataset.tokens = String(++tokens);
      } else if (event === "done") {
        reply ??= entry("assistant", "");
        reply.content.textContent = payload.reply;
        reply.item.dataset.status = "complete";
      } else if (event === "error") {
        reply ??= entry("assistant", "");
        reply.item.dataset.status = "failed";
        failed(reply, payload.message);
      }
    });
    try {
      return await stream(method, path, { body, signal: controller.signal, onChunk: (text) => parser.push(text) });
    } finally {
      controller = null;
      send.disabled = state !== "active";
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = input.value.trim();
    if (!message) return;
    clearError(error);
    try {
      input.value = "";
      await follow("POST", base, { message });
    } catch (failure) {
      input.value = message;
      showError(error, failure, "Could not send");
    }
    input.focus();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  function stateChanged(next) {
    state = next;
    send.disabled = next !== "active" || controller !== null;
    hint.textContent = next === "active" ? "" : "Start the environment to talk to its agent.";
  }

  (async () => {
    try {
      const { messages } = await api.get(`${base}?limit=50`);
      messages.forEach(showStored);
      if (state === "active") await follow("GET", `${base}/stream`);
    } catch (failure) {
      showError(error, failure, "Could not read the conversation");
    }
  })();
  stateChanged(state);
  return { element, stateChanged, close: () => controller?.abort() };
}

export { describe };
