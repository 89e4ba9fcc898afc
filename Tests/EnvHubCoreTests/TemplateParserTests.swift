import EnvHubCore
import Testing

@Suite struct TemplateParserTests {
    static let valid = """
        name: web
        title: Web app
        description: A test app.
        expose: app
        components:
          - name: app
            command: ["{{envhub}}", "workload", "hello"]
            image: example/app:1
            port: 8080
            env:
              GREETING: "hi {{user}} of {{project}}"
            resources:
              requests: {cpu: 100m, memory: 64Mi}
              limits: {cpu: "1", memory: 1.5Gi}
            autoscale: {min: 1, max: 3, cpuPercent: 80}
          - name: db
            command: ["db"]
            image: example/db:1
            port: 5432
            healthPath: /ready
            volume: {size: 1Gi, mountPath: /data}
        """

    @Test func readsEveryField() throws {
        let template = try TemplateParser.parse(yaml: Self.valid, file: "web.yaml")
        #expect(template.name == "web")
        #expect(template.expose == "app")
        #expect(template.exposedComponent?.port == 8080)
        #expect(template.components.count == 2)
        let app = template.components[0]
        #expect(app.health == .http(path: "/health"))
        #expect(app.env["GREETING"] == "hi {{user}} of {{project}}")
        #expect(app.resources.limits.memory == "1.5Gi")
        #expect(app.autoscale == Autoscale(min: 1, max: 3, cpuPercent: 80))
        #expect(template.components[1].volume == Volume(size: "1Gi", mountPath: "/data"))
        #expect(template.components[1].health == .http(path: "/ready"))
    }

    @Test func databaseTemplatesReferToTheirSiblingAndASecret() throws {
        let yaml = Self.valid
            .replacingOccurrences(of: "GREETING: \"hi {{user}} of {{project}}\"",
                                  with: "DATABASE_URL: \"postgres://app:{{secret}}@{{db.host}}:{{ db.port }}/{{project}}\"")
            .replacingOccurrences(of: "healthPath: /ready", with: "healthCheck: tcp")
        let template = try TemplateParser.parse(yaml: yaml, file: "data.yaml")
        #expect(template.components[1].health == .tcp)
        let placeholders = Placeholders(
            user: "alice", project: "shop", secret: "s3cret", endpoints: ["db": ("127.0.0.1", 40123), "app": ("127.0.0.1", 40124)])
        #expect(placeholders.fill(template.components[0].env["DATABASE_URL"] ?? "") == "postgres://app:s3cret@127.0.0.1:40123/shop")
        #expect(placeholders.fill("{{envhub}} {{user}}") == "{{envhub}} alice")
    }

    /// Each broken variant must fail naming the file, the right line and the field.
    @Test(arguments: [
        ("port: 8080", "port: eighty", 9, "components[0].port", "must be an integer"),
        ("port: 8080", "port: 70000", 9, "components[0].port", "must be between 1 and 65535"),
        ("cpu: 100m, memory: 64Mi", "cpu: lots, memory: 64Mi", 13, "components[0].resources.requests.cpu", "is not a quantity"),
        ("expose: app", "expose: nothing", 4, "expose", "names no component"),
        ("    port: 5432", "    port: 5432\n    colour: blue", 20, "components[1].colour", "unknown field"),
        ("GREETING: \"hi {{user}} of {{project}}\"", "GREETING: \"{{password}}\"", 11, "components[0].env", "unknown placeholder {{password}}"),
        ("GREETING: \"hi {{user}} of {{project}}\"", "GREETING: \"{{cache.port}}\"", 11, "components[0].env", "unknown placeholder {{cache.port}}"),
        ("GREETING: \"hi {{user}} of {{project}}\"", "GREETING: \"{{user\"", 11, "components[0].env", "unclosed"),
        ("GREETING: \"hi {{user}} of {{project}}\"", "VOLUME_DIR: x", 11, "components[0].env", "set by envhub"),
        ("healthPath: /ready", "healthCheck: udp", 20, "components[1].healthCheck", "must be http or tcp"),
        ("healthPath: /ready", "healthCheck: tcp\n    healthPath: /ready", 21, "components[1].healthPath", "does not apply"),
        ("GREETING: \"hi {{user}} of {{project}}\"", "USER_ID: x", 11, "components[0].env", "set by envhub"),
        ("name: db", "name: app", 16, "components[1].name", "used twice"),
        ("mountPath: /data", "mountPath: data", 21, "components[1].volume.mountPath", "absolute"),
        ("max: 3", "max: 0", 15, "components[0].autoscale.max", "at least min"),
        ("title: Web app\n", "", 1, "title", "is required"),
    ])
    func namesFileLineAndField(_ original: String, _ replacement: String, _ line: Int, _ field: String, _ message: String) {
        let yaml = Self.valid.replacingOccurrences(of: original, with: replacement)
        #expect(yaml != Self.valid)
        do {
            _ = try TemplateParser.parse(yaml: yaml, file: "broken.yaml")
            Issue.record("expected \(field) to be rejected")
        } catch {
            #expect(error.file == "broken.yaml")
            #expect(error.field == field)
            #expect(error.line == line, "\(error)")
            #expect(error.message.contains(message), "\(error)")
        }
    }

    @Test func reportsSyntaxErrorsWithTheirLine() {
        do {
            _ = try TemplateParser.parse(yaml: "name: a\ntitle: [unclosed\nother: 1\n", file: "syntax.yaml")
            Issue.record("expected a syntax error")
        } catch {
            #expect(error.file == "syntax.yaml")
            #expect(error.field == "(syntax)")
            #expect(error.line >= 2)
        }
    }

    @Test func laterTemplatesReplaceEarlierOnesOfTheSameName() throws {
        let first = try TemplateParser.parse(yaml: Self.valid, file: "a.yaml")
        var second = first
        second.title = "Replaced"
        let catalog = TemplateCatalog([first, second])
        #expect(catalog.templates.count == 1)
        #expect(catalog.template(named: "web")?.title == "Replaced")
    }
}
