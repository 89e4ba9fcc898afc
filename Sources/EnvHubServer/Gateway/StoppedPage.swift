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
        var headers: HTTPFields = [.cacheControl: "no-store", .contentType: "text/html; charset=utf-8", .xContentTypeOptions: "nosniff"]
        headers.append(contentsOf: WebController.pageSecurityFields)
        return FixedAnswer(status: .ok, headers: headers, body: ByteBuffer(string: page(project, autoStart: autoStart)))
    }

    /// The page; its script and style are the web UI's assets (`stopped.js`, `stopped.css`),
    /// so that it carries the UI's Content-Security-Policy, which allows nothing inline.
    static func page(_ project: Project, autoStart: Bool) -> String {
        let name = escape("\(project.owner)/\(project.name)")
        let api = escape("/api/users/\(project.owner)/projects/\(project.name)")
        let reason = project.stateReason.isEmpty ? "" : "<pre id=\"reason\">\(escape(project.stateReason))</pre>"
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(name) is \(project.state.rawValue) · envhub</title>
            <link rel="stylesheet" href="/assets/stopped.css">
            <script type="module" src="/assets/stopped.js"></script>
            </head>
            <body data-api="\(api)" data-auto-start="\(autoStart)">
            <main>
            <h1>\(name) is <span id="state">\(project.state.rawValue)</span></h1>
            \(reason)
            <p id="status" role="status" aria-live="polite"></p>
            <progress id="progress" hidden aria-label="Starting"></progress>
            <p><button id="start" type="button">Start</button> <a href="/">Back to envhub</a></p>
            </main>
            </body>
            </html>
            """
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
