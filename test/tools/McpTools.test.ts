import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { describe, expect, it, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type * as Tracer from "effect/Tracer"
import { ConfigError, ToolError } from "../../src/domain/Errors.js"
import type { ToolEvent } from "../../src/domain/Events.js"
import * as ExecutionContext from "../../src/domain/ExecutionContext.js"
import type { ToolCall } from "../../src/domain/Message.js"
import { anonymous, identities } from "../../src/tools/internal/mcpIdentity.js"
import * as McpTools from "../../src/tools/McpTools.js"
import * as Toolbox from "../../src/tools/Toolbox.js"
import { recordingTracer } from "../fixtures/recordingTracer.js"
import {
  everythingHttp,
  everythingStdio,
  everythingStdioWithPidFile,
  filesystemStdio,
  type TestServer,
  testServer
} from "../peers/McpServers.js"

const context = ExecutionContext.make({ contextId: "ctx-1", taskId: "task-1", agentId: "agent" })
const userContext = (userId: string, accessToken: string) =>
  ExecutionContext.make({ contextId: `ctx-${userId}`, taskId: `task-${userId}`, agentId: "agent", userId, accessToken })

/** Runs a tool call to its end: every event, and the `ToolError` it failed with, if any. */
const run = (
  provider: McpTools.McpToolProvider,
  name: string,
  args: Record<string, unknown>,
  ctx: ExecutionContext.ExecutionContext = context,
  id = `call-${name}`
) =>
  Effect.gen(function*() {
    const events: Array<ToolEvent> = []
    const outcome = yield* Stream.runForEach(provider.execute({ id, name, arguments: args }, ctx), (event) =>
      Effect.sync(() => events.push(event))).pipe(Effect.either)
    return { events, error: Either.isLeft(outcome) ? outcome.left : undefined }
  })

const resultOf = (events: ReadonlyArray<ToolEvent>) => {
  const last = events[events.length - 1]
  if (last?.type !== "tool-complete") throw new Error(`no tool-complete in ${JSON.stringify(events)}`)
  return last.result
}

/** Polls `condition` every 20 ms for up to `ms`; the bound is what lets a waiting test fail. */
const eventually = (condition: Effect.Effect<boolean, unknown>, ms = 3_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    while (!(yield* condition)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`condition not met within ${ms} ms`))
      yield* Effect.sleep("20 millis")
    }
  })

const rpcCount = (peer: TestServer, method: string) => peer.methods().filter((m) => m === method).length

class Everything extends Context.Tag("test/Everything")<Everything, McpTools.McpToolProvider>() {}

// Set before the stdio child starts: it must not see this, because it was not given to it.
process.env.EAK_MCP_TEST_PARENT_ONLY = "parent-only-value"

const everythingOverStdio = Layer.scoped(
  Everything,
  McpTools.make({ serverId: "everything", ...everythingStdio, env: { EAK_MCP_TEST_GIVEN: "given-value" } })
)
const everythingOverHttp = Layer.scoped(
  Everything,
  Effect.flatMap(everythingHttp, ({ url }) => McpTools.make({ serverId: "everything", serverUrl: url }))
)

const referenceTools = (transport: string, serverLayer: Layer.Layer<Everything, ConfigError>) =>
  layer(serverLayer, { excludeTestServices: true, timeout: "20 seconds" })(`server-everything over ${transport}`, (it) => {
    it.effect("lists the reference tools with their input schemas", () =>
      Effect.gen(function*() {
        const tools = yield* (yield* Everything).getTools
        const names = tools.map((tool) => tool.name)
        expect(names).toEqual(
          expect.arrayContaining(["echo", "get-sum", "trigger-long-running-operation", "get-structured-content"])
        )
        const sum = tools.find((tool) => tool.name === "get-sum")!
        expect(sum.description).toBe("Returns the sum of two numbers")
        expect(sum.parameters).toMatchObject({ type: "object", properties: { a: { type: "number" }, b: { type: "number" } } })
      }))

    it.effect("echo completes with the server's text, carrying the call's context", () =>
      Effect.gen(function*() {
        const { error, events } = yield* run(yield* Everything, "echo", { message: "hello" })
        expect(error).toBeUndefined()
        expect(events.map((event) => event.type)).toEqual(["tool-start", "tool-complete"])
        expect(events[1]).toMatchObject({
          contextId: "ctx-1",
          taskId: "task-1",
          toolCallId: "call-echo",
          toolName: "echo",
          result: "Echo: hello"
        })
      }))

    it.effect("get-sum adds its arguments", () =>
      Effect.gen(function*() {
        const { events } = yield* run(yield* Everything, "get-sum", { a: 2, b: 40 })
        expect(resultOf(events)).toBe("The sum of 2 and 40 is 42.")
      }))

    it.effect("trigger-long-running-operation reports each step as a tool-progress event", () =>
      Effect.gen(function*() {
        const { events } = yield* run(yield* Everything, "trigger-long-running-operation", { duration: 0.3, steps: 3 })
        expect(events.map((event) => event.type)).toEqual([
          "tool-start",
          "tool-progress",
          "tool-progress",
          "tool-progress",
          "tool-complete"
        ])
        expect(events.slice(1, 4).map((event) => event.type === "tool-progress" && [event.progress, event.total]))
          .toEqual([[1, 3], [2, 3], [3, 3]])
        expect(events[1]).toMatchObject({ contextId: "ctx-1", taskId: "task-1", toolCallId: "call-trigger-long-running-operation" })
      }))

    it.effect("get-structured-content yields the structured content as the result", () =>
      Effect.gen(function*() {
        const { events } = yield* run(yield* Everything, "get-structured-content", { location: "Chicago" })
        expect(resultOf(events)).toEqual({ temperature: 36, conditions: "Light rain / drizzle", humidity: 82 })
      }))

    it.effect("a tool the server does not have is NotFound", () =>
      Effect.gen(function*() {
        const { error } = yield* run(yield* Everything, "no-such-tool", {})
        expect(error).toBeInstanceOf(ToolError)
        expect(error).toMatchObject({ reason: "NotFound", toolName: "no-such-tool", toolCallId: "call-no-such-tool" })
        expect(error?.message).toContain("no tool 'no-such-tool'")
      }))

    if (transport === "stdio") {
      it.effect("the child sees only the SDK's safe defaults (PATH, HOME, …) and the given env, never the rest of this process's environment", () =>
        Effect.gen(function*() {
          const { events } = yield* run(yield* Everything, "get-env", {})
          const env = JSON.parse(resultOf(events) as string) as Record<string, string>
          expect(env.EAK_MCP_TEST_GIVEN).toBe("given-value")
          expect(env.PATH).toBe(process.env.PATH)
          expect(env).not.toHaveProperty("EAK_MCP_TEST_PARENT_ONLY")
          const allowed = ["HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "EAK_MCP_TEST_GIVEN"]
          expect(Object.keys(env).filter((key) => !allowed.includes(key))).toEqual([])
        }))
    }
  })

referenceTools("stdio", everythingOverStdio)
referenceTools("Streamable HTTP", everythingOverHttp)

describe("server-filesystem over stdio", () => {
  it.scopedLive("lists and reads a file in its directory, and reports a refused path as ExecutionFailed", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(path.join(tmpdir(), "eak-mcp-fs-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      writeFileSync(path.join(dir, "notes.txt"), "remember the milk\n")
      const files = yield* McpTools.make({ serverId: "files", ...filesystemStdio(dir) })

      const listed = yield* run(files, "list_directory", { path: dir })
      expect(resultOf(listed.events)).toEqual({ content: "[FILE] notes.txt" })
      const read = yield* run(files, "read_text_file", { path: path.join(dir, "notes.txt") })
      expect(resultOf(read.events)).toEqual({ content: "remember the milk\n" })
      const refused = yield* run(files, "read_text_file", { path: "/etc/hostname" })
      expect(refused.error).toMatchObject({ reason: "ExecutionFailed", toolName: "read_text_file" })
      expect(refused.error?.message).toContain("Access denied")
    }))
})

describe("an SDK Server in the test (Streamable HTTP on 127.0.0.1)", () => {
  it.scopedLive("follows nextCursor through every page of tools/list and caches the list", () =>
    Effect.gen(function*() {
      const peer = yield* testServer({ pageSize: 2 })
      yield* Effect.promise(() => Promise.all([peer.addTool("extra-1"), peer.addTool("extra-2")]))
      const provider = yield* McpTools.make({ serverId: "peer", serverUrl: peer.url })

      const tools = yield* provider.getTools
      expect(tools.map((tool) => tool.name)).toEqual(["echo", "fail", "wait", "extra-1", "extra-2"])
      const cursors = peer.requests.flatMap((r) => r.messages.filter((m) => m.method === "tools/list"))
        .map((m) => m.params?.cursor)
      expect(cursors).toEqual([undefined, "2", "4"])

      yield* provider.getTools
      expect(rpcCount(peer, "tools/list")).toBe(3)
    }))

  it.scopedLive("refreshes the cached list when the server sends notifications/tools/list_changed", () =>
    Effect.gen(function*() {
      const peer = yield* testServer()
      const provider = yield* McpTools.make({ serverId: "peer", serverUrl: peer.url })
      expect((yield* provider.getTools).map((tool) => tool.name)).toEqual(["echo", "fail", "wait"])

      yield* Effect.promise(() => peer.addTool("late-tool"))
      yield* eventually(Effect.map(provider.getTools, (tools) => tools.some((tool) => tool.name === "late-tool")))
      // Once before the change and once after it: polling in between was served from the cache.
      expect(rpcCount(peer, "tools/list")).toBe(2)
      const { events } = yield* run(provider, "late-tool", { text: "hi" })
      expect(resultOf(events)).toBe("late-tool: hi")
    }))

  it.scopedLive("re-initializes an expired session (HTTP 404) once and retries the call", () =>
    Effect.gen(function*() {
      const peer = yield* testServer()
      const provider = yield* McpTools.make({ serverId: "peer", serverUrl: peer.url })
      expect(resultOf((yield* run(provider, "echo", { text: "one" })).events)).toBe("echo: one")

      peer.forgetSessions()
      expect(resultOf((yield* run(provider, "echo", { text: "two" })).events)).toBe("echo: two")
      expect(rpcCount(peer, "initialize")).toBe(2)
      // DELETE of the forgotten session (when the stale connection is closed) may 404 too; no
      // JSON-RPC message got more than one 404.
      expect(peer.requests.filter((r) => r.status === 404 && r.messages.length > 0)).toHaveLength(1)
      const calls = peer.requests.filter((r) => r.messages.some((m) => m.method === "tools/call"))
      expect(calls.map((r) => r.status)).toEqual([200, 404, 200])
      expect(calls[2]!.sessionId).not.toBe(calls[0]!.sessionId)
    }))

  it.scopedLive("gives up with Transport when the session expires again right after re-initializing", () =>
    Effect.gen(function*() {
      const peer = yield* testServer()
      const provider = yield* McpTools.make({ serverId: "peer", serverUrl: peer.url })
      yield* run(provider, "echo", { text: "warm" })
      peer.expireEverySession = true

      const { error } = yield* run(provider, "echo", { text: "again" })
      expect(error).toMatchObject({ reason: "Transport", toolName: "echo" })
      expect(rpcCount(peer, "initialize")).toBe(2)
    }))

  it.scopedLive("sends each identity's own token on every request, tools/list and tools/call, never the other's", () =>
    Effect.gen(function*() {
      const peer = yield* testServer()
      const provider = yield* McpTools.make({ serverId: "peer", serverUrl: peer.url, getHeaders: McpTools.bearerHeaders })
      const alice = userContext("alice", "alice-token-1111")
      const bob = userContext("bob", "bob-token-2222")

      const calls = [alice, bob, alice, bob, alice, bob].map((ctx, i) =>
        run(provider, "echo", { text: ctx.authContext!.userId! }, ctx, `call-${i}`))
      const outcomes = yield* Effect.all(calls, { concurrency: "unbounded" })
      expect(outcomes.map(({ events }) => resultOf(events))).toEqual([
        "echo: alice",
        "echo: bob",
        "echo: alice",
        "echo: bob",
        "echo: alice",
        "echo: bob"
      ])

      const tokenOf: Record<string, string> = { alice: "Bearer alice-token-1111", bob: "Bearer bob-token-2222" }
      const mcpRequests = peer.requests.filter((r) => r.messages.length > 0)
      for (const request of mcpRequests) {
        expect(Object.values(tokenOf)).toContain(request.authorization)
        for (const message of request.messages) {
          // Each call's arguments name its user: the request carrying it must carry that user's token.
          if (message.method === "tools/call") expect(request.authorization).toBe(tokenOf[message.params.arguments.text])
        }
      }
      // One connection (session) per identity, and a session never carries two tokens.
      const tokensBySession = new Map<string, Set<string | undefined>>()
      for (const request of peer.requests.filter((r) => r.sessionId !== undefined)) {
        tokensBySession.set(request.sessionId!, (tokensBySession.get(request.sessionId!) ?? new Set()).add(request.authorization))
      }
      expect([...tokensBySession.values()].map((tokens) => [...tokens])).toEqual(
        expect.arrayContaining([["Bearer alice-token-1111"], ["Bearer bob-token-2222"]])
      )
      expect(tokensBySession.size).toBe(2)
      for (const token of ["Bearer alice-token-1111", "Bearer bob-token-2222"]) {
        const methods = mcpRequests.filter((r) => r.authorization === token).flatMap((r) => r.messages.map((m) => m.method))
        expect(methods).toEqual(expect.arrayContaining(["initialize", "tools/list", "tools/call"]))
      }

      // getToolsFor lists as the caller: on the caller's connection, with the caller's token.
      const beforeFor = peer.requests.length
      yield* provider.getToolsFor(bob)
      expect(peer.requests.slice(beforeFor).map((r) => r.authorization)).toEqual(
        peer.requests.slice(beforeFor).map(() => "Bearer bob-token-2222")
      )

      // getTools is the anonymous identity: no token at all.
      const before = peer.requests.length
      yield* provider.getTools
      const anonymous = peer.requests.slice(before)
      expect(anonymous.some((r) => r.messages.some((m) => m.method === "tools/list"))).toBe(true)
      expect(anonymous.map((r) => r.authorization)).toEqual(anonymous.map(() => undefined))
    }))

  it.scopedLive("a refused token is Unauthorized, and the token appears in no error", () =>
    Effect.gen(function*() {
      const peer = yield* testServer()
      peer.refusedTokens.add("stolen-token-9999")
      // Seed 000's name for the option, answering with an Effect.
      const provider = yield* McpTools.make({
        serverId: "peer",
        serverUrl: peer.url,
        getAuthHeaders: (auth) => Effect.succeed(McpTools.bearerHeaders(auth))
      })

      const { error } = yield* run(provider, "echo", { text: "x" }, userContext("mallory", "stolen-token-9999"))
      expect(error).toMatchObject({ reason: "Unauthorized", toolName: "echo" })
      // The peer echoed the token in its 401 body; it must have been scrubbed.
      expect(peer.requests[0]!.status).toBe(401)
      expect(JSON.stringify(error)).not.toContain("stolen-token-9999")
      expect(String(error)).not.toContain("stolen-token-9999")
      expect(error?.message).toContain("<redacted>")
    }))

  it.scopedLive("a getHeaders that fails is Unauthorized, saying nothing of what it held", () =>
    Effect.gen(function*() {
      const peer = yield* testServer()
      const provider = yield* McpTools.make({
        serverId: "peer",
        serverUrl: peer.url,
        getHeaders: () => Effect.fail(new TypeError("vault unreachable while reading token vault-token-5555"))
      })
      const { error } = yield* run(provider, "echo", { text: "x" }, userContext("dave", "dave-token-4444"))
      expect(error).toMatchObject({ reason: "Unauthorized", toolName: "echo", message: "MCP server 'peer': getHeaders failed (TypeError)" })
      expect(peer.requests).toEqual([])
    }))

  it.scopedLive("an isError result is ExecutionFailed carrying the server's text", () =>
    Effect.gen(function*() {
      const peer = yield* testServer()
      const provider = yield* McpTools.make({ serverId: "peer", serverUrl: peer.url })
      const { error, events } = yield* run(provider, "fail", {})
      expect(events.map((event) => event.type)).toEqual(["tool-start"])
      expect(error).toBeInstanceOf(ToolError)
      expect(error).toMatchObject({ reason: "ExecutionFailed", toolName: "fail", toolCallId: "call-fail", message: "the disk is full" })
    }))

  it.scopedLive("interrupting a call sends notifications/cancelled, which aborts the server's handler", () =>
    Effect.gen(function*() {
      const peer = yield* testServer()
      const provider = yield* McpTools.make({ serverId: "peer", serverUrl: peer.url })
      const fiber = yield* Effect.fork(run(provider, "wait", {}))
      yield* Effect.promise(() => peer.waitStarted(1))
      yield* Fiber.interrupt(fiber)

      yield* eventually(Effect.sync(() => peer.aborted.length === 1))
      const callId = peer.requests.flatMap((r) => r.messages).find((m) => m.method === "tools/call")!.id
      const cancelled = peer.requests.flatMap((r) => r.messages).filter((m) => m.method === "notifications/cancelled")
      expect(cancelled.map((m) => m.params.requestId)).toEqual([callId])
      expect(peer.aborted).toEqual([callId])
    }))

  it.scopedLive("a call past its timeout is Timeout, and the server is told to stop", () =>
    Effect.gen(function*() {
      const peer = yield* testServer()
      const provider = yield* McpTools.make({ serverId: "peer", serverUrl: peer.url, timeout: "300 millis" })
      const started = Date.now()
      const { error } = yield* run(provider, "wait", { ms: 10_000 })
      expect(error).toMatchObject({ reason: "Timeout", toolName: "wait" })
      expect(Date.now() - started).toBeLessThan(3_000)
      yield* eventually(Effect.sync(() => peer.aborted.length === 1))
    }))

  it.scopedLive("prefixes names with the server id when asked, and strips the prefix to call", () =>
    Effect.gen(function*() {
      const peer = yield* testServer()
      const provider = yield* McpTools.make({ serverId: "peer", serverUrl: peer.url, prefix: true })
      expect((yield* provider.getTools).map((tool) => tool.name)).toEqual(["peer__echo", "peer__fail", "peer__wait"])
      expect(Option.map(yield* provider.getTool("peer__echo"), (tool) => tool.description)).toEqual(Option.some("Echoes text"))

      const { events } = yield* run(provider, "peer__echo", { text: "p" })
      expect(resultOf(events)).toBe("echo: p")
      expect(events[1]).toMatchObject({ toolName: "peer__echo" })
      const unprefixed = yield* run(provider, "echo", { text: "p" })
      expect(unprefixed.error).toMatchObject({ reason: "NotFound", toolName: "echo" })
      const calls = peer.requests.flatMap((r) => r.messages).filter((m) => m.method === "tools/call")
      expect(calls.map((m) => m.params.name)).toEqual(["echo"])
    }))

  it.scopedLive("arguments the model garbled are InvalidArguments, without asking the server", () =>
    Effect.gen(function*() {
      const peer = yield* testServer()
      const provider = yield* McpTools.make({ serverId: "peer", serverUrl: peer.url })
      const error = yield* provider.execute(
        { id: "c", name: "echo", arguments: {}, argumentsError: "arguments are not valid JSON: Unexpected token" },
        context
      ).pipe(Stream.runDrain, Effect.flip)
      expect(error).toMatchObject({ reason: "InvalidArguments", message: "arguments are not valid JSON: Unexpected token" })
      expect(peer.requests).toEqual([])
    }))

  it.scopedLive("falls back to legacy HTTP+SSE when the server refuses the Streamable HTTP initialize", () =>
    Effect.gen(function*() {
      const peer = yield* testServer({ legacySse: true })
      // getHeaders may answer with a Promise.
      const provider = yield* McpTools.make({
        serverId: "legacy",
        serverUrl: peer.url,
        getHeaders: (auth) => Promise.resolve(McpTools.bearerHeaders(auth))
      })
      const { events } = yield* run(provider, "echo", { text: "old" }, userContext("carol", "carol-token-3333"))
      expect(resultOf(events)).toBe("echo: old")
      expect(peer.requests.map((r) => `${r.httpMethod} ${r.path} ${r.status}`).slice(0, 2)).toEqual([
        "POST /mcp 405",
        "GET /mcp 200"
      ])
      expect(peer.requests.filter((r) => r.path === "/messages").length).toBeGreaterThan(0)
      expect(peer.requests.map((r) => r.authorization)).toEqual(peer.requests.map(() => "Bearer carol-token-3333"))

      // The next identity's connection goes straight to the legacy transport.
      const before = peer.requests.length
      const again = yield* run(provider, "echo", { text: "again" }, userContext("erin", "erin-token-6666"))
      expect(resultOf(again.events)).toBe("echo: again")
      expect(peer.requests.slice(before)[0]).toMatchObject({ httpMethod: "GET", path: "/mcp", authorization: "Bearer erin-token-6666" })
    }))

  it.scopedLive("concurrent first calls share one connection, which closes after idleTimeToLive unused", () =>
    Effect.gen(function*() {
      const peer = yield* testServer()
      const provider = yield* McpTools.make({ serverId: "peer", serverUrl: peer.url, idleTimeToLive: "300 millis" })
      const first = yield* Effect.all([run(provider, "echo", { text: "a" }), run(provider, "echo", { text: "b" })], {
        concurrency: "unbounded"
      })
      expect(first.map(({ events }) => resultOf(events))).toEqual(["echo: a", "echo: b"])
      expect(rpcCount(peer, "initialize")).toBe(1)
      // Used again within its idle time: the same connection.
      yield* Effect.sleep("100 millis")
      expect(resultOf((yield* run(provider, "echo", { text: "c" })).events)).toBe("echo: c")
      expect(rpcCount(peer, "initialize")).toBe(1)
      // Unused past it: closed (the session is deleted), and the next call connects again.
      yield* eventually(Effect.sync(() => peer.requests.some((r) => r.httpMethod === "DELETE")))
      expect(resultOf((yield* run(provider, "echo", { text: "d" })).events)).toBe("echo: d")
      expect(rpcCount(peer, "initialize")).toBe(2)
    }))

  it.scopedLive("a connection in use is not closed by its idle time", () =>
    Effect.gen(function*() {
      const peer = yield* testServer()
      const provider = yield* McpTools.make({ serverId: "peer", serverUrl: peer.url, idleTimeToLive: "100 millis" })
      yield* run(provider, "echo", { text: "warm" })
      // Idle for less than its time, then busy for longer than it.
      const { events } = yield* run(provider, "wait", { ms: 500 })
      expect(resultOf(events)).toBe("waited 500 ms")
      expect(rpcCount(peer, "initialize")).toBe(1)
      expect(peer.requests.some((r) => r.httpMethod === "DELETE")).toBe(false)
    }))

  it.scopedLive("a connection dropped while another call uses it closes when that call ends, and its replacement stays", () =>
    Effect.gen(function*() {
      const peer = yield* testServer()
      const provider = yield* McpTools.make({ serverId: "peer", serverUrl: peer.url, idleTimeToLive: "600 millis" })
      yield* run(provider, "echo", { text: "warm" })
      const firstSession = peer.requests.find((r) => r.sessionId !== undefined)!.sessionId
      // A call holds the first connection while another finds its session expired and reconnects.
      const holder = yield* Effect.fork(run(provider, "wait", { ms: 300 }))
      yield* eventually(Effect.sync(() => rpcCount(peer, "tools/call") === 2))
      peer.forgetSessions()
      expect(resultOf((yield* run(provider, "echo", { text: "again" })).events)).toBe("echo: again")
      expect(rpcCount(peer, "initialize")).toBe(2)
      // The replacement is busy past the first connection's idle time after its last call ended.
      const busy = yield* Effect.fork(run(provider, "wait", { ms: 1_200 }))
      yield* Fiber.join(holder)
      // The dropped connection closes as soon as its last call ends, not after an idle time.
      yield* eventually(Effect.sync(() => peer.requests.some((r) => r.httpMethod === "DELETE" && r.sessionId === firstSession)), 400)
      yield* Effect.sleep("700 millis")
      expect(resultOf((yield* run(provider, "echo", { text: "still" })).events)).toBe("echo: still")
      expect(rpcCount(peer, "initialize")).toBe(2)
      yield* Fiber.join(busy)
    }))

  it.scopedLive("a getHeaders that throws is Unauthorized, naming only the error's kind", () =>
    Effect.gen(function*() {
      const peer = yield* testServer()
      const provider = yield* McpTools.make({
        serverId: "peer",
        serverUrl: peer.url,
        getHeaders: () => {
          throw new RangeError("token vault-token-7777 expired")
        }
      })
      const { error } = yield* run(provider, "echo", { text: "x" }, userContext("fay", "fay-token-8888"))
      expect(error).toMatchObject({ reason: "Unauthorized", message: "MCP server 'peer': getHeaders failed (RangeError)" })
      expect(peer.requests).toEqual([])
    }))

  it.scopedLive("through a Toolbox, a call runs in McpToolProvider.execute under Toolbox.execute under the caller, and failures are tool-error events", () =>
    Effect.gen(function*() {
      const peer = yield* testServer()
      const provider = yield* McpTools.make({ serverId: "peer", serverUrl: peer.url })
      const toolbox = yield* Toolbox.make([provider])
      const { spans, tracer: recording } = recordingTracer()
      const collect = (call: ToolCall) =>
        Stream.runCollect(toolbox.execute(call, context)).pipe(
          Effect.map((chunk) => Array.from(chunk)),
          Effect.withSpan("caller"),
          Effect.withTracer(recording)
        )

      const ok = yield* collect({ id: "c-1", name: "echo", arguments: { text: "traced" } })
      expect(ok.map((event) => event.type)).toEqual(["tool-start", "tool-complete"])
      const own = spans.find((span) => span.name === "McpToolProvider.execute")!
      const parentName = (span: Tracer.Span) =>
        Option.match(span.parent, { onNone: () => undefined, onSome: (p) => (p._tag === "Span" ? p.name : "external") })
      expect(parentName(own)).toBe("Toolbox.execute")
      expect(parentName(spans.find((span) => span.name === "Toolbox.execute")!)).toBe("caller")
      expect(own.attributes.get("tool.call_id")).toBe("c-1")

      const failed = yield* collect({ id: "c-2", name: "fail", arguments: {} })
      expect(failed.map((event) => event.type)).toEqual(["tool-start", "tool-error"])
      expect(failed[1]).toMatchObject({ reason: "ExecutionFailed", error: "the disk is full", toolCallId: "c-2" })
      const garbled = yield* collect({ id: "c-3", name: "echo", arguments: {}, argumentsError: "not JSON" })
      expect(garbled.map((event) => event.type)).toEqual(["tool-start", "tool-error"])
      expect(garbled[1]).toMatchObject({ reason: "InvalidArguments", error: "not JSON" })
      expect(peer.requests.flatMap((r) => r.messages).filter((m) => m.method === "tools/call")).toHaveLength(2)
    }))

  it.scopedLive("an unreachable server is Transport for getTools and for a call", () =>
    Effect.gen(function*() {
      const peer = yield* testServer()
      const url = peer.url.replace("/mcp", "/nowhere-else")
      const provider = yield* McpTools.make({ serverId: "gone", serverUrl: url, timeout: "2 seconds" })
      const listError = yield* Effect.flip(provider.getTools)
      expect(listError).toMatchObject({ reason: "Transport", toolName: "tools/list" })
      expect(listError.message).toContain("MCP server 'gone'")
      const { error } = yield* run(provider, "echo", {})
      expect(error).toMatchObject({ reason: "Transport", toolName: "echo" })
    }))
})

describe("faults", () => {
  it.scopedLive("a stdio server killed mid-call is Transport; the next call starts a new server and works", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(path.join(tmpdir(), "eak-mcp-kill-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const pidFile = path.join(dir, "server.pid")
      const provider = yield* McpTools.make({ serverId: "everything", ...everythingStdioWithPidFile(pidFile) })

      const events: Array<ToolEvent> = []
      const call = provider.execute(
        { id: "long", name: "trigger-long-running-operation", arguments: { duration: 3, steps: 30 } },
        context
      )
      const outcome = yield* Stream.runForEach(call, (event) =>
        Effect.sync(() => {
          events.push(event)
          // Killed mid-call: after the server has begun reporting progress.
          if (event.type === "tool-progress" && event.progress === 1) {
            process.kill(Number(readFileSync(pidFile, "utf8")), "SIGKILL")
          }
        })).pipe(Effect.flip)
      const firstPid = readFileSync(pidFile, "utf8").trim()
      expect(outcome).toBeInstanceOf(ToolError)
      expect(outcome).toMatchObject({ reason: "Transport", toolName: "trigger-long-running-operation" })
      expect(events.some((event) => event.type === "tool-complete")).toBe(false)

      const { events: after } = yield* run(provider, "echo", { message: "back" })
      expect(resultOf(after)).toBe("Echo: back")
      expect(readFileSync(pidFile, "utf8").trim()).not.toBe(firstPid)
    }))
})

describe("stdio start-up", () => {
  it.scopedLive("a command that cannot be started is Transport, naming the failure", () =>
    Effect.gen(function*() {
      const provider = yield* McpTools.make({ serverId: "ghost", command: "/nonexistent/mcp-server", stderr: "ignore" })
      const { error } = yield* run(provider, "echo", {})
      expect(error).toMatchObject({ reason: "Transport", toolName: "echo" })
      expect(error?.message).toContain("ENOENT")
    }))
})

describe("identities", () => {
  it("reuse a caller's identity while its headers stay the same, and never across users or tokens", () => {
    const identify = identities()
    const alice = identify("alice", { Authorization: "Bearer alice-token-1111" })
    expect(identify("alice", { Authorization: "Bearer alice-token-1111" })).toBe(alice)
    const refreshed = identify("alice", { Authorization: "Bearer alice-token-2222" })
    expect(refreshed.digest).not.toBe(alice.digest)
    expect(identify("alice", { authorization: "Bearer alice-token-2222" }).digest).toBe(refreshed.digest)
    const bob = identify("bob", { Authorization: "Bearer alice-token-2222" })
    expect(bob.digest).not.toBe(refreshed.digest)
    expect(identify(undefined, {})).toBe(anonymous)
  })
})

describe("options", () => {
  it.scopedLive("refuses options that cannot work with a ConfigError naming the option", () =>
    Effect.gen(function*() {
      const both = yield* Effect.flip(
        McpTools.make({ serverId: "x", serverUrl: "http://127.0.0.1:1/mcp", command: "node" } as unknown as McpTools.McpToolProviderOptions)
      )
      expect(both).toBeInstanceOf(ConfigError)
      expect(both.message).toContain("exactly one of serverUrl")
      const badUrl = yield* Effect.flip(McpTools.make({ serverId: "x", serverUrl: "not a url" }))
      expect(badUrl).toMatchObject({ reason: "InvalidValue", key: "mcp.serverUrl" })
      const ftp = yield* Effect.flip(McpTools.make({ serverId: "x", serverUrl: "ftp://127.0.0.1/mcp" }))
      expect(ftp).toMatchObject({ key: "mcp.serverUrl" })
      const stdioHeaders = yield* Effect.flip(
        McpTools.make({ serverId: "x", command: "node", getHeaders: () => ({}) } as unknown as McpTools.McpToolProviderOptions)
      )
      expect(stdioHeaders).toMatchObject({ key: "mcp.getHeaders" })
      const timeout = yield* Effect.flip(McpTools.make({ serverId: "x", serverUrl: "http://127.0.0.1:1/mcp", timeout: 0 }))
      expect(timeout).toMatchObject({ key: "mcp.timeout" })
      const noId = yield* Effect.flip(McpTools.make({ serverId: "", command: "node" }))
      expect(noId).toMatchObject({ key: "mcp.serverId" })
    }))
})
