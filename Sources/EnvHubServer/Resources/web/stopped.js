// The gateway's page for a project whose environment is not running (StoppedPage.swift):
// Start activates it, follows its progress events and reloads into the app once it is
// active. `data-api` on <body> is the project's API path; `data-auto-start` starts at once.
const api = document.body.dataset.api;
const status = document.getElementById("status");
const button = document.getElementById("start");
const progress = document.getElementById("progress");

function follow() {
  const events = new EventSource(api + "/events");
  const onState = (event) => {
    const data = JSON.parse(event.data);
    document.getElementById("state").textContent = data.state;
    status.textContent = data.message;
    if (data.state === "active") { events.close(); location.reload(); }
    if (data.state === "failed" || data.state === "inactive") {
      events.close(); progress.hidden = true; button.disabled = false;
    }
  };
  events.addEventListener("state", onState);
  events.addEventListener("progress", (event) => { status.textContent = JSON.parse(event.data).message; });
  events.onerror = () => { status.textContent = "Lost contact with envhub; retrying…"; };
}

async function start() {
  button.disabled = true;
  progress.hidden = false;
  status.textContent = "Starting…";
  const response = await fetch(api + "/activate", { method: "POST", credentials: "same-origin" });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    status.textContent = "Could not start: " + (body.error?.message ?? response.statusText);
    progress.hidden = true;
    button.disabled = false;
    return;
  }
  follow();
}

button.addEventListener("click", start);
if (document.body.dataset.autoStart === "true") start();
