// The shell: routes the page paths (History API) to page modules, keeps the signed-in
// user, and draws the header. The hub answers every page path with index.html.
import { api, describe, paths } from "./api.js";
import { h, fill } from "./dom.js";

// [pattern, module, title, public]; a module exports `render(context)`, which may return a
// function to call when the page is left (to close streams and sockets).
const routes = [
  [/^\/login$/, "./pages/login.js", "Sign in", true],
  [/^\/signup$/, "./pages/signup.js", "Sign up", true],
  [/^\/projects$/, "./pages/projects.js", "Projects"],
  [/^\/projects\/([^/]+)\/([^/]+)$/, "./pages/project.js", "Project"],
  [/^\/chat(?:\/([^/]+))?$/, "./pages/chat.js", "Chat"],
  [/^\/profile$/, "./pages/profile.js", "Profile"],
  [/^\/admin$/, "./pages/admin.js", "Admin"],
];

const state = { user: null, leave: null, generation: 0 };

function match(path) {
  for (const [pattern, module, title, isPublic] of routes) {
    const found = pattern.exec(path);
    if (found) return { module, title, isPublic, params: found.slice(1).map((part) => part && decodeURIComponent(part)) };
  }
  return null;
}

/** Goes to a page of the UI without reloading. */
export function navigate(path, { replace = false } = {}) {
  history[replace ? "replaceState" : "pushState"](null, "", path);
  show({ focus: true });
}

function drawHeader() {
  const header = document.getElementById("top");
  header.hidden = !state.user;
  if (!state.user) return;
  document.getElementById("whoami").textContent = state.user.displayName || state.user.username;
  document.getElementById("nav-admin").hidden = state.user.role !== "admin";
  const section = location.pathname.split("/")[1];
  for (const link of header.querySelectorAll("nav a")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function show({ focus = false } = {}) {
  const generation = ++state.generation;
  state.leave?.();
  state.leave = null;
  const main = document.getElementById("main");
  if (location.pathname === "/") return navigate("/projects", { replace: true });
  const route = match(location.pathname);
  if (!route) {
    drawHeader();
    fill(main, h("h1", {}, "Not found"), h("p", {}, "There is no page here. ", h("a", { href: "/projects" }, "Go to your projects.")));
    return;
  }
  try {
    if (!route.isPublic && !state.user) state.user = await api.get(paths.me);
    const page = await import(route.module);
    if (generation !== state.generation) return;
    document.title = `${route.title} · envhub`;
    drawHeader();
    main.replaceChildren();
    const context = { main, params: route.params, user: state.user, navigate, setUser, signedIn };
    state.leave = (await page.render(context)) ?? null;
  } catch (error) {
    if (generation !== state.generation) return;
    drawHeader();
    fill(main, h("h1", {}, route.title), h("p", { class: "error", role: "alert" }, `This page could not be shown: ${describe(error)}`));
  }
  if (focus) main.focus({ preventScroll: true });
}

function setUser(user) {
  state.user = user;
  drawHeader();
}

/** After signing in: the user, then where they were going. */
function signedIn(user, next) {
  state.user = user;
  if (match(new URL(next, location.origin).pathname)) navigate(next, { replace: true });
  else location.assign(next); // a gateway page such as /u/alice/web/
}

// Links to the UI's own pages change the page without reloading; the rest behave as links do.
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href]");
  if (!link || link.target || link.hasAttribute("download") || event.defaultPrevented) return;
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !(url.pathname === "/" || match(url.pathname))) return;
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});

window.addEventListener("popstate", () => show({ focus: true }));

document.getElementById("logout").addEventListener("click", async () => {
  try {
    await api.post("/api/auth/logout", undefined, { expect401: true });
  } catch {
    // Signed out already, or the hub is unreachable: either way the cookie is of no more use here.
  }
  state.user = null;
  state.leave?.();
  state.leave = null;
  location.assign("/login");
});

show();
