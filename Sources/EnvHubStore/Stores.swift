import EnvHubCore
import Foundation

/// Accounts. Names are unique; creating a taken one throws a 409 `EnvHubError`.
public protocol UserStore: Sendable {
    func createUser(name: UserName, role: Role, passwordHash: String, profile: Profile, at: Date) async throws -> User
    func user(named name: UserName) async throws -> User?
    /// The user and their bcrypt hash, for checking a password.
    func credentials(of name: UserName) async throws -> (user: User, passwordHash: String)?
    func users() async throws -> [User]
    func countUsers() async throws -> Int
    /// Returns nil when there is no such user.
    func updateUser(named name: UserName, profile: Profile, role: Role, at: Date) async throws -> User?
    /// Sets the password and revokes every session of the user except `keeping`, in one transaction.
    func changePassword(of name: UserName, passwordHash: String, keeping sessionID: String?, at: Date) async throws -> Bool
    /// Deletes the user with their sessions and projects. Returns false when there was none.
    func deleteUser(named name: UserName) async throws -> Bool
}

/// A signed-in session; the token the client holds names it, so it can be revoked.
public struct Session: Sendable, Equatable {
    public var id: String
    public var userID: String
    public var createdAt: Date
    public var expiresAt: Date
    public var revokedAt: Date?

    public init(id: String, userID: String, createdAt: Date, expiresAt: Date, revokedAt: Date? = nil) {
        self.id = id
        self.userID = userID
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    public func isValid(at date: Date) -> Bool { revokedAt == nil && expiresAt > date }
}

public protocol SessionStore: Sendable {
    func createSession(_ session: Session) async throws
    /// The session and its user, whether or not it is still valid.
    func session(id: String) async throws -> (session: Session, user: User)?
    func revokeSession(id: String, at: Date) async throws
    /// Removes sessions that expired before `date`; returns how many.
    func deleteSessions(expiredBefore date: Date) async throws -> Int
}

/// Failed sign-ins per user name and client address, for throttling password guessing
/// across all replicas.
public protocol LoginFailureStore: Sendable {
    func recordLoginFailure(username: String, client: String, at: Date) async throws
    /// Times of failures since `date`, oldest first.
    func loginFailures(username: String, client: String, since date: Date) async throws -> [Date]
    func clearLoginFailures(username: String, client: String) async throws
    /// Forgets failures older than `date`; returns how many.
    func deleteLoginFailures(before date: Date) async throws -> Int
}

/// Projects, keyed by owner and name. Creating a taken name throws a 409 `EnvHubError`.
public protocol ProjectStore: Sendable {
    func createProject(_ project: Project) async throws -> Project
    func projects(ownedBy owner: UserName) async throws -> [Project]
    func allProjects() async throws -> [Project]
    func project(owner: UserName, name: ProjectName) async throws -> Project?
    func project(id: String) async throws -> Project?
    /// Saves name, template, description and updatedAt of the project with this id (its state
    /// is the lifecycle's to change). Renaming or changing the template is refused with a 409
    /// unless the environment is inactive or failed. Returns nil when there is no such project.
    func updateProject(_ project: Project) async throws -> Project?
    func deleteProject(id: String) async throws -> Bool
    func countProjectsByState() async throws -> [EnvironmentState: Int]

    /// Moves the project's environment to `to` if it is now in one of `from`, in one step, so
    /// that two requests never both win. Returns the moved project, or nil when it was in
    /// another state (or gone). `desired` and `record` change only when given.
    func transition(
        projectID: String, from: Set<EnvironmentState>, to: EnvironmentState, reason: String,
        desired: EnvironmentState?, record: RuntimeRecordChange, at: Date
    ) async throws -> Project?
    /// Moves each project's last activity forward to the given time (never back).
    func recordActivity(_ times: [String: Date]) async throws
    /// The runtime's JSON record of what runs for the project, if any.
    func runtimeRecord(projectID: String) async throws -> String?
    /// Every project the reconciler must look at: wanted active, not at rest, or with something recorded as running.
    func projectsToReconcile() async throws -> [(project: Project, desired: EnvironmentState, record: String?)]
}

/// What a transition does to the stored runtime record.
public enum RuntimeRecordChange: Sendable, Equatable {
    case keep
    case clear
    case set(String)
}

/// Small values every replica must agree on, such as the token signing key.
public protocol SettingsStore: Sendable {
    func setting(_ key: String) async throws -> String?
    /// Stores `value` unless the key exists; returns the value that is stored either way.
    func settingInsertingIfAbsent(_ key: String, value: String) async throws -> String
}

/// Chat rooms and their messages (docs/chat.md). Writes that others must hear of announce a
/// `ChatEvent` in the same transaction, so it goes out only if the write committed.
public protocol ChatStore: Sendable {
    /// Throws a 409 `EnvHubError` when the name is taken.
    func createRoom(_ room: Room, creatorID: String) async throws -> Room
    func room(named name: RoomName) async throws -> Room?
    /// Every room (or the one named) as `userID` sees it (unread counts), by name.
    func roomSummaries(for userID: String, named: RoomName?) async throws -> [RoomSummary]
    func deleteRoom(named name: RoomName) async throws -> Bool
    /// Stores each message under its room's next id, in one transaction and in the order
    /// given, or, when a post's `key` repeats one of the author's keys in that room, gives the
    /// message stored then (`replayed`). Nil for a post to a room that does not exist.
    func postMessages(_ posts: [MessagePost], author: User, at: Date) async throws -> [(message: ChatMessage, replayed: Bool)?]
    /// Up to `limit` messages, oldest first: the newest ones below `before`, or else the
    /// oldest ones above `after`, or else the newest.
    func messages(in room: RoomName, before: Int64?, after: Int64?, limit: Int) async throws -> [ChatMessage]
    func message(in room: RoomName, id: Int64) async throws -> (message: ChatMessage, authorID: String?)?
    func editMessage(in room: RoomName, id: Int64, text: String, at: Date) async throws -> ChatMessage?
    /// Removes the text and marks the message deleted. Nil: no such message.
    func deleteMessage(in room: RoomName, id: Int64) async throws -> ChatMessage?
    /// Moves the user's read marker forward to `id` (never back); joins the room.
    func markRead(in room: RoomName, userID: String, upTo id: Int64) async throws -> Bool
    /// Rooms, messages, and messages since `since`.
    func chatCounts(since: Date) async throws -> (rooms: Int, messages: Int, recentMessages: Int)
}

/// Everything the hub keeps.
/// What replicas say to each other through the store (PostgreSQL LISTEN/NOTIFY).
public protocol ChangeAnnouncing: Sendable {
    /// Every change and message, this replica's and the others'.
    var changes: ChangeFeed { get }
    /// Sends `change` to the other replicas only.
    func tellOtherReplicas(_ change: StoreChange) async throws
}

public typealias HubStore = UserStore & SessionStore & LoginFailureStore & ProjectStore & SettingsStore & ChatStore
    & ChangeAnnouncing

/// One message to store (`ChatStore.postMessages`).
public struct MessagePost: Sendable {
    public var room: RoomName
    public var text: String
    public var key: String?

    public init(room: RoomName, text: String, key: String?) {
        self.room = room
        self.text = text
        self.key = key
    }
}

extension ChatStore {
    /// One message (see `postMessages`).
    public func postMessage(room: RoomName, author: User, text: String, key: String?, at date: Date) async throws
        -> (message: ChatMessage, replayed: Bool)? {
        try await postMessages([MessagePost(room: room, text: text, key: key)], author: author, at: date)[0]
    }
}
