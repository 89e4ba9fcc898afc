// Chat (docs/chat.md): rooms with unread counts, one room's messages live over the socket,
// typing and presence, older messages on scrolling up, editing and deleting your own.
import { api, paths, chatSocketURL } from "../api.js";
import { h, fill, field, errorBox, showError, clearError, confirmDialog } from "../dom.js";

export async function render({ main, params, user, navigate }) {
  const { rooms } = await api.get(paths.rooms);
  const current = params[0] ?? rooms[0]?.name ?? null;
  if (!params[0] && current) return navigate(`/chat/${encodeURIComponent(current)}`, { replace: true });
  const roomList = h("ul", { class: "rooms", id: "rooms", "aria-label": "Rooms" });
  const unread = new Map();
  for (const room of rooms) {
    const count = h("span", { class: "unread", hidden: room.unread === 0 || room.name === current, "aria-label": `${room.unread} unread` }, String(room.unread));
    unread.set(room.name, count);
    roomList.append(h("li", {}, h("a", { href: `/chat/${encodeURIComponent(room.name)}`, "data-room": room.name,
      "aria-current": room.name === current ? "page" : null }, `# ${room.name}`, count)));
  }
  const side = h("aside", { "aria-label": "Rooms" }, h("div", { class: "card" }, h("h2", {}, "Rooms"),
    rooms.length ? roomList : h("p", { class: "muted" }, "No rooms yet."), newRoomForm(navigate)));
  const room = rooms.find((candidate) => candidate.name === current);
  const pane = h("section", { class: "card", "aria-label": "Messages" });
  main.append(h("h1", {}, "Chat"), h("div", { class: "chat" }, side, pane));
  if (current && !room) {
    pane.append(h("p", { class: "error", role: "alert" }, `There is no room named ${current}.`));
    return;
  }
  if (!room) {
    pane.append(h("p", { class: "muted" }, "Create the first room to start talking."));
    return;
  }
  return roomView(pane, room, rooms, user, unread);
}

function newRoomForm(navigate) {
  const name = h("input", { name: "room", required: true, maxlength: 40, pattern: "[a-z]([a-z0-9\\-]*[a-z0-9])?", autocomplete: "off" });
  const error = errorBox();
  const submit = h("button", { type: "submit", class: "secondary" }, "Create room");
  const form = h("form", { id: "new-room" }, field("New room", name, "Lowercase letters, digits and dashes."), error, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    clearError(error);
    try {
      const room = await api.post(paths.rooms, { name: name.value.trim() });
      navigate(`/chat/${encodeURIComponent(room.name)}`);
    } catch (failure) {
      showError(error, failure, "Could not create the room");
      submit.disabled = false;
    }
  });
  return form;
}

function roomView(pane, room, rooms, user, unread) {
  const list = h("ol", { class: "messages", id: "messages", tabindex: 0, "aria-label": `Messages in ${room.name}`, "aria-live": "polite" });
  const online = h("p", { class: "online muted", id: "online" });
  const typing = h("p", { class: "typing", id: "typing", "aria-live": "polite" });
  const status = h("p", { class: "muted", role: "status" });
  const error = errorBox();
  const text = h("input", { name: "text", maxlength: 4000, autocomplete: "off", "aria-label": `Message #${room.name}` });
  const send = h("button", { type: "submit" }, "Send");
  const composer = h("form", { class: "composer", id: "composer" }, text, send);
  fill(pane, h("div", { class: "section-head" }, h("h2", {}, `# ${room.name}`), online),
    room.description ? h("p", { class: "muted" }, room.description) : null, status, list, typing, error, composer);

  const shown = new Map(); // id → element
  const last = new Map(rooms.map((candidate) => [candidate.name, candidate.lastMessage?.id ?? 0]));
  let hasMore = false;
  let loadingOlder = false;
  let socket = null;
  let closed = false;
  let retry = 0;
  let lastTyping = 0;
  const typers = new Map();

  function nearBottom() { return list.scrollTop + list.clientHeight >= list.scrollHeight - 40; }

  function draw(message) {
    const mine = message.author === user.username;
    const body = h("div", { class: "text" }, message.deleted ? "(deleted)" : message.text);
    const actions = mine && !message.deleted ? h("span", { class: "actions" },
      h("button", { type: "button", class: "secondary small", onclick: () => edit(message, item, body), "aria-label": `Edit message ${message.id}` }, "Edit"),
      h("button", { type: "button", class: "danger small", onclick: () => remove(message), "aria-label": `Delete message ${message.id}` }, "Delete")) : null;
    const item = h("li", { class: `message${mine ? " mine" : ""}${message.deleted ? " deleted" : ""}`, "data-id": message.id, "data-author": message.author },
      h("div", { class: "meta" }, h("strong", {}, message.author),
        h("time", { datetime: message.createdAt }, new Date(message.createdAt).toLocaleTimeString()),
        message.editedAt && !message.deleted ? h("span", {}, "(edited)") : null, actions), body);
    return item;
  }

  /** Adds or replaces a message in id order. */
  function upsert(message) {
    const item = draw(message);
    const existing = shown.get(message.id);
    if (existing) {
      existing.replaceWith(item);
    } else {
      const stick = nearBottom();
      const after = [...shown.keys()].filter((id) => id > message.id).sort((a, b) => a - b)[0];
      if (after === undefined) list.append(item); else list.insertBefore(item, shown.get(after));
      if (stick || message.author === user.username) list.scrollTop = list.scrollHeight;
    }
    shown.set(message.id, item);
    if (message.id > (last.get(room.name) ?? 0)) last.set(room.name, message.id);
  }

  function edit(message, item, body) {
    const input = h("input", { value: message.text, maxlength: 4000, "aria-label": "Edited message" });
    const form = h("form", { class: "composer" }, input, h("button", { type: "submit", class: "small" }, "Save"),
      h("button", { type: "button", class: "secondary small", onclick: () => form.replaceWith(body) }, "Cancel"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearError(error);
      try {
        upsert(await api.patch(`${paths.room(room.name)}/messages/${message.id}`, { text: input.value }));
      } catch (failure) {
        showError(error, failure, "Could not edit the message");
      }
    });
    body.replaceWith(form);
    input.focus();
  }

  async function remove(message) {
    if (!(await confirmDialog("Delete this message?"))) return;
    clearError(error);
    try {
      await api.delete(`${paths.room(room.name)}/messages/${message.id}`);
      upsert({ ...message, deleted: true, text: "" });
    } catch (failure) {
      showError(error, failure, "Could not delete the message");
    }
  }

  async function loadOlder() {
    if (!hasMore || loadingOlder) return;
    loadingOlder = true;
    const oldest = Math.min(...shown.keys());
    try {
      const page = await api.get(`${paths.room(room.name)}/messages?before=${oldest}&limit=50`);
      const height = list.scrollHeight;
      for (const message of page.messages) upsert(message);
      list.scrollTop += list.scrollHeight - height;
      hasMore = page.hasMore;
    } catch (failure) {
      showError(error, failure, "Could not load older messages");
    } finally {
      loadingOlder = false;
    }
  }

  function markRead() {
    const id = last.get(room.name) ?? 0;
    if (id > 0 && socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "read", room: room.name, id }));
  }

  function showTyping() {
    const now = Date.now();
    for (const [name, until] of typers) if (until < now) typers.delete(name);
    const names = [...typers.keys()];
    typing.textContent = names.length ? `${names.join(", ")} ${names.length === 1 ? "is" : "are"} typing…` : "";
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "subscribed":
        if (frame.room === room.name) online.textContent = `Online: ${frame.online.join(", ")}`;
        break;
      case "presence":
        if (frame.room === room.name) online.textContent = `Online: ${frame.online.join(", ")}`;
        break;
      case "message":
      case "edited":
        if (frame.room === room.name) {
          upsert(frame.message);
          typers.delete(frame.message.author);
          showTyping();
          if (document.visibilityState === "visible") markRead();
        } else if (frame.type === "message" && frame.message.author !== user.username) {
          const badge = unread.get(frame.room);
          if (badge) {
            badge.textContent = String(Number(badge.textContent) + 1);
            badge.hidden = false;
          }
          last.set(frame.room, frame.message.id);
        }
        break;
      case "deleted": {
        const item = shown.get(frame.id);
        if (frame.room === room.name && item) upsert({ id: frame.id, room: room.name, author: item.dataset.author, text: "", createdAt: item.querySelector("time").getAttribute("datetime"), deleted: true });
        break;
      }
      case "typing":
        if (frame.room === room.name) {
          typers.set(frame.user, Date.now() + 4000);
          showTyping();
          setTimeout(showTyping, 4100);
        }
        break;
      case "room_deleted":
        if (frame.room === room.name) showError(error, new Error("an admin deleted this room"));
        break;
      case "error":
        showError(error, new Error(frame.message), "Chat");
        break;
    }
  }

  function connect() {
    socket = new WebSocket(chatSocketURL());
    socket.addEventListener("open", () => {
      retry = 0;
      status.textContent = "";
      for (const name of last.keys()) {
        const frame = { type: "subscribe", room: name };
        // The open room resumes after what it shows; the others only count what comes next.
        if (name === room.name) frame.since = last.get(name);
        socket.send(JSON.stringify(frame));
      }
      markRead();
    });
    socket.addEventListener("message", (event) => onFrame(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      if (closed) return;
      retry += 1;
      const delay = Math.min(10, 2 ** (retry - 1));
      status.textContent = `Lost the live connection (${event.code === 4008 ? "too slow" : `code ${event.code}`}); reconnecting in ${delay} s…`;
      setTimeout(() => { if (!closed) connect(); }, delay * 1000);
    });
  }

  composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = text.value.trim();
    if (!value) return;
    send.disabled = true;
    clearError(error);
    try {
      const key = crypto.randomUUID();
      upsert(await api.post(`${paths.room(room.name)}/messages`, { text: value, key }));
      text.value = "";
    } catch (failure) {
      showError(error, failure, "Could not send");
    } finally {
      send.disabled = false;
      text.focus();
    }
  });
  text.addEventListener("input", () => {
    if (Date.now() - lastTyping < 3000 || socket?.readyState !== WebSocket.OPEN) return;
    lastTyping = Date.now();
    socket.send(JSON.stringify({ type: "typing", room: room.name }));
  });
  list.addEventListener("scroll", () => { if (list.scrollTop < 40) loadOlder(); });

  (async () => {
    try {
      const page = await api.get(`${paths.room(room.name)}/messages?limit=50`);
      for (const message of page.messages) upsert(message);
      hasMore = page.hasMore;
      list.scrollTop = list.scrollHeight;
      last.set(room.name, page.messages.at(-1)?.id ?? 0);
      connect();
    } catch (failure) {
      showError(error, failure, "Could not load the messages");
    }
  })();
  text.focus();
  return () => {
    closed = true;
    socket?.close(1000);
  };
}
