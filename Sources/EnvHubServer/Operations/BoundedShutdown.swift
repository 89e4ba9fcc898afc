import Logging
import ServiceLifecycle

/// Runs a service whose end the hub must not wait for indefinitely: once its graceful shutdown
/// has begun, it has `patience` to end; one that has not ended by then is left behind (its
/// task ends with the process) and an error is logged, so that one stuck dependency cannot keep
/// `serve` from exiting on SIGTERM, or a test's hub from stopping. A safety net: a hub on
/// PostgreSQL hung in its shutdown twice in CI, most likely on a query PostgresNIO never
/// answered (`PostgresDatabase.rows` now keeps that from happening); the store's services
/// run through this.
struct BoundedShutdown: Service {
    let service: any Service
    /// What the log calls it.
    let name: String
    let logger: Logger
    /// Closing a pool's connections takes milliseconds.
    var patience: Duration = .seconds(10)

    private enum Outcome: Sendable {
        case ended(Result<Void, any Error>)
        case outlasted
    }

    func run() async throws {
        let (outcomes, report) = AsyncStream.makeStream(of: Outcome.self)
        // Unstructured, so that waiting for it can end without it; it inherits the task-locals
        // that tell it of the graceful shutdown, and is cancelled with this task.
        let running = Task {
            do {
                try await service.run()
                report.yield(.ended(.success(())))
            } catch {
                report.yield(.ended(.failure(error)))
            }
        }
        let watch = Task {
            guard (try? await gracefulShutdown()) != nil, (try? await Task.sleep(for: patience)) != nil else { return }
            report.yield(.outlasted)
        }
        defer { watch.cancel() }
        try await withTaskCancellationHandler {
            for await outcome in outcomes {
                switch outcome {
                case .ended(let result):
                    return try result.get()
                case .outlasted:
                    logger.error("\(name) did not stop within \(patience) of the shutdown; the hub stops without it")
                    return
                }
            }
        } onCancel: {
            running.cancel()
        }
    }
}
