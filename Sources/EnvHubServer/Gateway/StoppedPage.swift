import EnvHubCore
import Foundation
import Hummingbird

/// What the gateway answers while a project's environment is not running. API clients get
/// 503 JSON with the state; browsers get a page (200, so that no console reports an error
/// for what is an expected answer) that says so (with the failure reason) and has
/// a Start button. For its owner, when the project's `autoStart` is on (the default), the page
/// starts the environment at once, follows the progress events and reloads when it is active;
/// an admin looking at someone else's project starts it only by pressing the button.
enum StoppedPage {
    struct Body: Encodable {
        let error: ErrorBody.Detail
        let state: EnvironmentState
        let stateReason: String?
    }

    static func answer(_ project: Project, visitor: User, html: Bool) -> FixedAnswer {
        guard html else {
            let message = "\(project.owner)/\(project.name) is \(project.state.rawValue), not active; activate it first"
            let body = Body(error: .init(code: "environment_not_running", message: message), state: project.state,
                            stateReason: project.stateReason.isEmpty ? nil : project.stateReason)
            return FixedAnswer(
                status: .serviceUnavailable,
                headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store", .retryAfter: "5"],
                body: (try? JSONWriter.encode(body)) ?? ByteBuffer())
        }
        let autoStart = project.autoStart && visitor.name == project.owner
            && (project.state == .inactive || project.state == .starting)
        return FixedAnswer(
            status: .ok, headers: [.cacheControl: "no-store", .contentType: "text/html; charset=utf-8"],
            body: ByteBuffer(string: page(project, autoStart: autoStart)))
    }

    static func page(_ project: Project, autoStart: Bool) -> String {
        let name = escape("\(project.owner)/\(project.name)")
        let api = "/api/users/\(project.owner)/projects/\(project.name)"
        let reason = project.stateReason.isEmpty ? "" : "<pre id=\"reason\">\(escape(project.stateReason))</pre>"
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(name) is \(project.state.rawValue) · envhub</title>
            <style>
            body { font: 16px/1.5 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f5f6f8; }
            main { max-width: 36rem; margin: 10vh auto; padding: 2rem; background: #fff; border-radius: 12px; box-shadow: 0 1px 4px #0002; }
            h1 { font-size: 1.4rem; margin-top: 0; }
            pre { white-space: pre-wrap; background: #fbeaea; color: #7a1212; padding: .75rem; border-radius: 6px; font-size: .85rem; }
            button { font: inherit; padding: .5rem 1.25rem; border: 0; border-radius: 6px; background: #2f5bd3; color: #fff; cursor: pointer; }
            button:disabled { background: #8aa0d8; cursor: default; }
            progress { width: 100%; }
            </style>
            </head>
            <body>
            <main>
            <h1>\(name) is <span id="state">\(project.state.rawValue)</span></h1>
            \(reason)
            <p id="status" role="status" aria-live="polite"></p>
            <progress id="progress" hidden aria-label="Starting"></progress>
            <p><button id="start" type="button">Start</button> <a href="/">Back to envhub</a></p>
            </main>
            <script type="module">
            const api = \((try? JSONWriter.encode(api)).map { String(buffer: $0) } ?? "\"\"");
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
            \(autoStart ? "start();" : "")
            </script>
            </body>
            </html>
            """
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
