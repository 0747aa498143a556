import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import type * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { Console as NodeConsole } from "node:console"
import { Writable } from "node:stream"
import { inspect } from "node:util"
import { AgentError, ToolError } from "../../src/domain/Errors.js"
import { ToolCompleteEvent, ToolStartEvent } from "../../src/domain/Events.js"
import * as ExecutionContext from "../../src/domain/ExecutionContext.js"

const token = "tok-LEAK-CANARY-7f3a9c"

const ctx = ExecutionContext.make({
  contextId: "ctx-1",
  taskId: "task-1",
  agentId: "agent",
  userId: "user-1",
  accessToken: token,
  scopes: ["read"]
})

const accessToken = ctx.authContext!.credentials!.accessToken

/**
 * Every way a value gets printed: `String()`, `JSON.stringify`, `util.inspect`, and Effect's
 * loggers (default, pretty, logfmt, JSON, structured) writing through a captured `Console`,
 * with the value as a message, as an annotation and inside a failure `Cause`.
 */
const renderings = (value: unknown) =>
  Effect.gen(function*() {
    const loggers = {
      default: Logger.add(Logger.defaultLogger),
      pretty: Logger.replace(Logger.defaultLogger, Logger.prettyLogger({ colors: false })),
      logFmt: Logger.logFmt,
      json: Logger.json,
      // Console output cuts objects at depth 2; render the whole structure so nothing hides there.
      structured: Logger.replace(
        Logger.defaultLogger,
        Logger.structuredLogger.pipe(
          Logger.map((entry) => `${inspect(entry, { depth: null })}\n${JSON.stringify(entry)}`),
          Logger.withConsoleLog
        )
      )
    }
    const out: Record<string, string> = {
      String: String(value),
      "JSON.stringify": JSON.stringify(value),
      "util.inspect": inspect(value, { depth: null, showHidden: true })
    }
    for (const [name, layer] of Object.entries(loggers)) {
      const chunks: Array<string> = []
      const sink = new Writable({
        write(chunk, _encoding, callback) {
          chunks.push(String(chunk))
          callback()
        }
      })
      const base = yield* Effect.console
      const captured: Console.Console = { ...base, unsafe: new NodeConsole({ stdout: sink, stderr: sink, colorMode: false }) }
      yield* Effect.logInfo("holding", value).pipe(
        Effect.zipRight(Effect.logError(Cause.fail(value))),
        Effect.annotateLogs("value", value),
        Effect.provide(layer),
        Effect.withConsole(captured)
      )
      out[`logger ${name}`] = chunks.join("")
    }
    return out
  })

/** Asserts the token shows nowhere, and that the loggers did print the value (redacted). */
const expectNoToken = (value: unknown) =>
  Effect.gen(function*() {
    const out = yield* renderings(value)
    for (const [how, text] of Object.entries(out)) {
      expect({ how, leaked: text.includes(token) }).toEqual({ how, leaked: false })
      if (how !== "String") expect({ how, redacted: text.includes("<redacted>") }).toEqual({ how, redacted: true })
    }
  })

describe("ExecutionContext.make", () => {
  it("wraps a plain access token in Redacted and keeps its value retrievable", () => {
    expect(Redacted.isRedacted(accessToken)).toBe(true)
    expect(Redacted.value(accessToken)).toBe(token)
    expect(ctx.authContext).toMatchObject({ userId: "user-1", scopes: ["read"] })
  })

  it("passes an already-redacted token through as the same value", () => {
    const redacted = Redacted.make("other")
    const made = ExecutionContext.make({ contextId: "c", taskId: "t", agentId: "a", accessToken: redacted })
    expect(made.authContext?.credentials?.accessToken).toBe(redacted)
  })

  it("omits authContext entirely when no identity is given", () => {
    expect(ExecutionContext.make({ contextId: "c", taskId: "t", agentId: "a" })).toStrictEqual({
      contextId: "c",
      taskId: "t",
      agentId: "a"
    })
  })

  it("keeps the token Redacted when encoded, so JSON shows only <redacted>", () => {
    const encoded = Schema.encodeSync(ExecutionContext.ExecutionContext)(ctx)
    expect(Redacted.isRedacted(encoded.authContext?.credentials?.accessToken)).toBe(true)
    expect(JSON.stringify(encoded)).not.toContain(token)
    expect(JSON.stringify(encoded)).toContain("<redacted>")
  })
})

describe("an access token never shows through String(), JSON.stringify, util.inspect or Effect's loggers", () => {
  it.effect("in an ExecutionContext", () => expectNoToken(ctx))

  it.effect("in tool events that carry it in their arguments or result", () =>
    Effect.gen(function*() {
      const base = { contextId: ctx.contextId, taskId: ctx.taskId, toolCallId: "call-1", toolName: "fetch", timestamp: "2024-01-01T00:00:00.000Z" }
      const start = new ToolStartEvent({ ...base, arguments: { url: "https://x.test", authorization: accessToken } })
      yield* expectNoToken(start)
      yield* expectNoToken(new ToolCompleteEvent({ ...base, result: { context: ctx } }))
      const encoded = JSON.stringify(Schema.encodeSync(ToolStartEvent)(start))
      expect(encoded).not.toContain(token)
    }))

  it.effect("in errors that carry it in their details or cause", () =>
    Effect.gen(function*() {
      const toolError = new ToolError({
        reason: "Unauthorized",
        toolName: "fetch",
        toolCallId: "call-1",
        message: "The server rejected the credentials.",
        details: { accessToken }
      })
      yield* expectNoToken(toolError)
      yield* expectNoToken(new AgentError({ reason: "RepeatedToolFailure", message: "gave up", cause: toolError }))
    }))
})
