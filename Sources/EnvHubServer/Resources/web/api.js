// The one API client every page uses: JSON requests, server-sent events (EventSource for
// GET, fetch + ReadableStream for POST), the chat socket's address, and errors in words.
// A 401 means the session is gone: the browser goes to the login page, which brings the
// user back here afterwards.

/** A failed request; `message` is a sentence to show the user. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const enc = encodeURIComponent;

/** The API's paths, built in one place. */
export const paths = {
  me: "/api/auth/me",
  user: (user) => `/api/users/${enc(user)}`,
  projects: (user) => `/api/users/${enc(user)}/projects`,
  project: (user, project) => `/api/users/${enc(user)}/projects/${enc(project)}`,
  rooms: "/api/rooms",
  room: (room) => `/api/rooms/${enc(room)}`,
  app: (user, project) => `/u/${enc(user)}/${enc(project)}/`,
};

/** Where to sign in and come back to `next` (this page by default). */
export function loginURL(next = location.pathname + location.search) {
  return "/login?next=" + enc(next);
}

function sessionExpired() {
  if (location.pathname !== "/login") location.assign(loginURL());
}

async function errorFrom(response) {
  const body = await response.json().catch(() => null);
  const message = body?.error?.message ?? `the hub answered ${response.status} ${response.statusText}`.trim();
  return new ApiError(response.status, body?.error?.code ?? `http_${response.status}`, message);
}

/** Sends a request and returns the JSON answer (null for 204); throws ApiError otherwise. */
export async function request(method, path, body, { signal, expect401 = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, signal, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "network", "could not reach envhub; check the connection and try again");
  }
  if (response.status === 401 && !expect401) sessionExpired();
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") ?? "";
  return type.includes("json") ? response.json() : response.text();
}

export const api = {
  get: (path, options) => request("GET", path, undefined, options),
  post: (path, body, options) => request("POST", path, body, options),
  put: (path, body, options) => request("PUT", path, body, options),
  patch: (path, body, options) => request("PATCH", path, body, options),
  delete: (path, options) => request("DELETE", path, undefined, options),
};

/**
 * Follows a GET server-sent event stream with EventSource (which reconnects by itself).
 * `handlers` maps event names to functions of the parsed JSON data; `onerror` is told
 * when the connection drops. Returns a function that stops following.
 */
export function follow(path, handlers, onerror) {
  const source = new EventSource(path);
  for (const [name, handler] of Object.entries(handlers)) {
    source.addEventListener(name, (event) => handler(JSON.parse(event.data), event));
  }
  source.onerror = () => onerror?.(source);
  return () => source.close();
}

/** Splits a text/event-stream into events: `{id, event, data}` for each blank-line-ended block. */
export class EventStreamParser {
  constructor(onEvent) {
    this.buffer = "";
    this.onEvent = onEvent;
  }

  push(text) {
    this.buffer += text.replace(/\r\n?/g, "\n");
    let end;
    while ((end = this.buffer.indexOf("\n\n")) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const event = { id: null, event: "message", data: [] };
      for (const line of block.split("\n")) {
        if (line === "" || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") event.data.push(value);
        else if (field === "event") event.event = value;
        else if (field === "id") event.id = value;
      }
      if (event.data.length) this.onEvent({ ...event, data: event.data.join("\n") });
    }
  }
}

/**
 * Sends a request whose answer is a stream (server-sent events or plain text) and hands
 * each piece to `onChunk` as it arrives. Resolves when the stream ends; 204 resolves at once
 * with false. Errors before the stream starts throw ApiError.
 */
export async function stream(method, path, { body, headers = {}, signal, onChunk }) {
  const init = { method, signal, credentials: "same-origin", headers: { ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") return false;
    throw new ApiError(0, "network", "could not reach envhub; check the connection and try again");
  }
  if (response.status === 401) sessionExpired();
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204 || !response.body) return false;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return true;
      onChunk(value);
    }
  } catch (error) {
    if (error.name === "AbortError") return false;
    throw new ApiError(0, "network", "the connection to envhub broke off");
  }
}

/** The chat socket's address on this origin (docs/chat.md). */
export function chatSocketURL() {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/api/chat`;
}

/** A failure as a sentence, whatever threw it. */
export function describe(error) {
  if (error instanceof ApiError) return error.message;
  return error?.message ?? String(error);
}
