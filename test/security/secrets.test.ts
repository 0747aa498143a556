/**
 * One set of secrets fed through every path a secret can take into the kernel — a model's tool
 * call (valid and broken JSON), a provider's error body, an MCP server's environment, a remote
 * agent's error, a local tool's failure and crash — and looked for, in every form it can take
 * inside text, in every event, error, log line and request sent to a model. All peers are real
 * local servers or child processes.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Agent from "../../src/agent/Agent.js"
import * as ConfigManager from "../../src/config/ConfigManager.js"
import type { AgentEvent, ToolEvent } from "../../src/domain/Events.js"
import * as ExecutionContext from "../../src/domain/ExecutionContext.js"
import { formsOf } from "../../src/domain/Redaction.js"
import { openai } from "../../src/plugins/builtin.js"
import * as OpenAiCompatible from "../../src/providers/OpenAiCompatible.js"
import * as SecretsManager from "../../src/secrets/SecretsManager.js"
import * as AgentTools from "../../src/tools/AgentTools.js"
import * as LocalTools from "../../src/tools/LocalTools.js"
import * as McpTools from "../../src/tools/McpTools.js"
import * as Toolbox from "../../src/tools/Toolbox.js"
import * as A2aAgents from "../peers/A2aAgents.js"
import { everythingStdio } from "../peers/McpServers.js"
import * as OpenAiServer from "../peers/OpenAiServer.js"

/** The secrets: a 3-character one, one with a quote and a backslash (JSON-escaped on the wire), and ordinary keys. */
const SHORT = "k3y"
const QUOTED = `sk-q"uo\\te-4242`
const BROKEN = "sk-broken-json-9d8c7b6a"
const HEADER = "hdr-token-77aa88bb99cc"
const URLPASS = "url-pass-0f1e2d3c"
const BODY = "body-secret-5a6b7c8d"

/** Every form of every secret that must not appear. */
const forbidden = (secrets: ReadonlyArray<string>) => secrets.flatMap((secret) => formsOf(secret))

const expectClean = (what: string, text: string, secrets: ReadonlyArray<string>) => {
  for (const form of forbidden(secrets)) {
    if (text.includes(form)) throw new Error(`${what} holds a secret (as ${JSON.stringify(form)}): ${text.slice(0, 2000)}`)
  }
}

/** Collects every log line (all levels) for the effect's duration. */
const withLogs = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const lines: Array<string> = []
    const logger = Logger.map(Logger.logfmtLogger, (line) => void lines.push(line))
    return effect.pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Logger.withMinimumLogLevel(LogLevel.All),
      Effect.either,
      Effect.map((result) => ({ result, lines }))
    )
  })

/** A run's events up to its end or failure. */
const runEvents = (input: Agent.RunInput) =>
  Effect.suspend(() => {
    const events: Array<AgentEvent> = []
    return Agent.run(input).pipe(
      Stream.runForEach((event) => Effect.sync(() => events.push(event))),
      Effect.either,
      Effect.map((result) => ({ events, result }))
    )
  })

const context = ExecutionContext.make({ contextId: "ctx", taskId: "task", agentId: "agent" })

const executeAll = (toolbox: Toolbox.Service, name: string, args: Record<string, unknown>) =>
  toolbox.execute({ id: `call-${name}`, name, arguments: args }, context).pipe(
    Stream.runCollect,
    Effect.map((events) => Chunk.toArray(events) as ReadonlyArray<ToolEvent>),
    Effect.catchAll((error) => Effect.succeed([error] as ReadonlyArray<unknown>))
  )

describe("no secret survives in any event, error, log line or model request", () => {
  it.scoped("a model's pairing calls, broken and valid JSON, through the OpenAI-compatible provider and the loop", () =>
    Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [
          // Broken JSON: the raw text holds the key and cannot be parsed.
          OpenAiServer.sse(OpenAiServer.toolCallChunks([
            { id: "c1", name: "openai_pair", arguments: `{"apiKey": "${BROKEN}", "model": `, fragments: [`{"apiKey": "${BROKEN.slice(0, 9)}`, `${BROKEN.slice(9)}", "model": `] }
          ])),
          // Valid JSON with a key that is JSON-escaped on the wire.
          OpenAiServer.sse(OpenAiServer.toolCallChunks([{ id: "c2", name: "openai_pair", arguments: { apiKey: QUOTED } }])),
          OpenAiServer.sse(OpenAiServer.textChunks(["Paired."]))
        ]
      })
      const stores = Layer.merge(ConfigManager.layerMemory(), SecretsManager.layerMemoryWith({ envFallback: false }))
      const toolbox = Layer.unwrapEffect(Effect.gen(function*() {
        const config = yield* ConfigManager.ConfigManager
        const secrets = yield* SecretsManager.SecretsManager
        return Toolbox.layer([openai.getPairingTools!(secrets, config)])
      }))
      const model = OpenAiCompatible.liteLLMProvider({ model: "m", baseUrl: server.url, apiKey: Redacted.make(HEADER) })
      const { lines, result } = yield* withLogs(
        Effect.gen(function*() {
          const run = yield* runEvents({ prompt: "pair openai" })
          const secrets = yield* SecretsManager.SecretsManager
          const stored = yield* secrets.retrieve("provider.openai.apiKey")
          return { ...run, stored }
        }).pipe(Effect.provide(Layer.mergeAll(model, toolbox).pipe(Layer.provideMerge(stores), Layer.provide(NodeHttpClient.layerUndici))))
      )
      const outcome = result._tag === "Right" ? result.right : undefined
      expect(outcome).toBeDefined()
      // The valid call did its job: the tool received the key itself.
      expect(outcome!.stored._tag === "Some" && Redacted.value(outcome!.stored.value)).toBe(QUOTED)
      const types = outcome!.events.map((event) => event.type)
      expect(types).toContain("tool-error")
      expect(types).toContain("tool-complete")
      expect(types[types.length - 1]).toBe("task-complete")
      const secrets = [BROKEN, QUOTED]
      expectClean("the events", JSON.stringify(outcome!.events), secrets)
      expectClean("the log lines", lines.join("\n"), secrets)
      expect(server.completions).toHaveLength(3)
      // The requests after the calls carry the conversation, the calls and their results.
      for (const request of server.completions.slice(1)) expectClean("a model request", request.rawBody, secrets)
      expect(server.completions[2]!.rawBody).toContain("<redacted>")
    }))

  it.scoped("the OpenAI-compatible provider protects sensitive arguments as it parses, streamed or whole", () =>
    Effect.gen(function*() {
      const tools = [{ name: "pair", description: "Pairs.", parameters: { type: "object" }, sensitive: ["apiKey"] }]
      const call = { id: "c1", name: "pair", arguments: { apiKey: QUOTED, model: "m" } }
      const wire = JSON.stringify(call.arguments)
      const server = yield* OpenAiServer.start({
        script: [
          OpenAiServer.sse(OpenAiServer.toolCallChunks([{ ...call, fragments: [wire.slice(0, 14), wire.slice(14)] }])),
          OpenAiServer.json(OpenAiServer.toolCallCompletion([call]))
        ]
      })
      const { streamed, whole } = yield* Effect.gen(function*() {
        const model = yield* OpenAiCompatible.make({ id: "p", model: "m", baseUrl: server.url })
        return { streamed: Chunk.toArray(yield* Stream.runCollect(model.stream([], tools))), whole: yield* model.chat([], tools) }
      }).pipe(Effect.provide(NodeHttpClient.layerUndici))
      expect(streamed.filter((chunk) => chunk._tag === "tool-call-delta")).toEqual([])
      for (const parsed of [streamed.find((chunk) => chunk._tag === "tool-call-end")!, { toolCall: whole.toolCalls![0]! }]) {
        const args = (parsed as { readonly toolCall: { readonly arguments: Record<string, unknown> } }).toolCall.arguments
        expect(Redacted.isRedacted(args.apiKey) && Redacted.value(args.apiKey as Redacted.Redacted<string>)).toBe(QUOTED)
        expect(args.model).toBe("m")
      }
      expectClean("the parsed chunks", JSON.stringify([streamed, whole]), [QUOTED])
    }))

  it.scoped("a provider's error body echoing the key (3 characters), the header, a URL password and a JSON body", () =>
    Effect.gen(function*() {
      const echoed = `Invalid key ${SHORT}. You sent Authorization: Bearer ${SHORT} to https://user:${URLPASS}@proxy.example/v1 ` +
        `with {"key":"${JSON.stringify(SHORT).slice(1, -1)}","password":"${BODY}"} and ?api_key=${BODY}`
      const server = yield* OpenAiServer.start({
        fallback: OpenAiServer.status(401, { error: { message: echoed } }, { "x-request-id": `req ${SHORT}` })
      })
      const model = OpenAiCompatible.liteLLMProvider({ model: "m", baseUrl: server.url, apiKey: Redacted.make(SHORT) })
      const { lines, result } = yield* withLogs(
        runEvents({ prompt: "hello" }).pipe(
          Effect.provide(Layer.mergeAll(model, Toolbox.layer([])).pipe(Layer.provide(NodeHttpClient.layerUndici)))
        )
      )
      expect(result._tag).toBe("Right")
      const run = result._tag === "Right" ? result.right : undefined
      expect(run!.result._tag).toBe("Left")
      const failed = run!.events.find((event) => event.type === "task-status" && event.status === "failed")
      expect(failed?.type === "task-status" && failed.message).toContain("Unauthorized")
      // The URL password and the JSON body's value are not known to the kernel: they go by their shape.
      expectClean("the events", JSON.stringify(run!.events), [SHORT, URLPASS, BODY])
      expectClean("the error", JSON.stringify(run!.result) + String(run!.result._tag === "Left" ? run!.result.left.message : ""), [SHORT, URLPASS])
      expectClean("the log lines", lines.join("\n"), [SHORT, URLPASS])
    }))

  it.scoped("an MCP server over stdio that prints the credentials it was given in its environment", () =>
    Effect.gen(function*() {
      const provider = yield* McpTools.make({ serverId: "everything", ...everythingStdio, env: { API_TOKEN: SHORT, SERVICE_PASSWORD: QUOTED } })
      const toolbox = yield* Toolbox.make([provider])
      const { lines, result } = yield* withLogs(executeAll(toolbox, "get-env", {}))
      const events = result._tag === "Right" ? result.right : []
      expect((events[events.length - 1] as ToolEvent).type).toBe("tool-complete")
      const text = JSON.stringify(events)
      expect(text).toContain("API_TOKEN")
      expectClean("the MCP result", text, [SHORT, QUOTED])
      expectClean("the log lines", lines.join("\n"), [SHORT, QUOTED])
    }), { timeout: 20_000 })

  it.scoped("a remote agent whose failure echoes the headers it was sent", () =>
    Effect.gen(function*() {
      const echoed = `rejected Authorization: Bearer ${HEADER}, X-Api-Key ${SHORT}, escaped ${JSON.stringify(QUOTED)}, ` +
        `encoded ${encodeURIComponent(QUOTED)}`
      const peer = yield* A2aAgents.serve({ name: "Echoer", description: "fails", behaviour: A2aAgents.endsIn("FAILED", echoed) })
      const remote = AgentTools.from({
        url: peer.url,
        name: "Remote",
        description: "A remote agent.",
        toolName: "remote",
        headers: { authorization: Redacted.make(`Bearer ${HEADER}`), "x-api-key": SHORT, "x-session-secret": QUOTED }
      })
      const toolbox = yield* Toolbox.make([remote])
      const { lines, result } = yield* withLogs(executeAll(toolbox, "remote", { prompt: "hi" }))
      const events = result._tag === "Right" ? result.right : []
      const last = events[events.length - 1] as ToolEvent | undefined
      expect(last?.type).toBe("tool-error")
      expectClean("the remote agent's error", JSON.stringify(events), [HEADER, SHORT, QUOTED])
      expectClean("the log lines", lines.join("\n"), [HEADER, SHORT, QUOTED])
    }))

  it.scoped("a local tool that fails and crashes quoting its sensitive argument", () =>
    Effect.gen(function*() {
      const login = LocalTools.tool({
        name: "login",
        description: "Logs in.",
        parameters: Schema.Struct({ user: Schema.String, password: Schema.String }),
        sensitive: ["password"],
        handler: ({ password }, { progress }) =>
          progress({ message: `trying ${encodeURIComponent(password)}` }).pipe(
            Effect.zipRight(
              password === QUOTED
                ? Effect.fail(`wrong password ${JSON.stringify({ password })}`)
                : Effect.die(new Error(`crashed on ${password}`))
            )
          )
      })
      const toolbox = yield* Toolbox.make([LocalTools.localTools([login])])
      const { lines, result } = yield* withLogs(Effect.all([
        executeAll(toolbox, "login", { user: "ann", password: QUOTED }),
        executeAll(toolbox, "login", { user: "bob", password: SHORT })
      ]))
      const events = result._tag === "Right" ? result.right.flat() : []
      expect(events.filter((event) => (event as ToolEvent).type === "tool-error")).toHaveLength(2)
      expectClean("the local tool's events", JSON.stringify(events), [QUOTED, SHORT])
      expect(lines.some((line) => line.includes("crashed"))).toBe(true)
      expectClean("the log lines", lines.join("\n"), [QUOTED, SHORT])
    }))
})
