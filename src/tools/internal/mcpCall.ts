/**
 * One MCP `tools/call` behind one read (`Reads`). The reader pulls `next`: the first pull emits
 * `tool-start` and, when the identity's connection is open and its tool list known, starts the
 * call at once (no fiber: the SDK's promise and progress callbacks fill an `EventBuffer` and
 * wake the reader); otherwise the next pull connects or lists first. An expired session is
 * re-initialized once. Closing early aborts the request (the SDK sends
 * notifications/cancelled) and gives the connection back.
 *
 * @internal
 */
import type { CallToolResult, Progress } from "@modelcontextprotocol/sdk/types.js"
import * as Cause from "effect/Cause"
import type * as Chunk from "effect/Chunk"
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import type * as Tracer from "effect/Tracer"
import { ToolError } from "../../domain/Errors.js"
import { timestampOf, type ToolEvent } from "../../domain/Events.js"
import type { ExecutionContext } from "../../domain/ExecutionContext.js"
import type { ToolCall } from "../../domain/Message.js"
import * as Redaction from "../../domain/Redaction.js"
import type { Reads, RunOptions } from "../ToolProvider.js"
import * as CallEvents from "./callEvents.js"
import { EventBuffer } from "./eventBuffer.js"
import { resolveIdentity } from "./mcpCaller.js"
import { type Connection, listedHas, startCall } from "./mcpConnection.js"
import { dropsConnection, McpFailure, scrub } from "./mcpErrors.js"
import type { Identity } from "./mcpIdentity.js"
import type * as Pool from "./mcpPool.js"
import { callError, ensureListed, type Server } from "./mcpServer.js"
import * as Settlement from "./settlement.js"

export class McpCall implements Reads {
  private readonly buffer = new EventBuffer<ToolEvent>(() =>
    this.result !== undefined || this.failure !== undefined || this.outcome !== undefined || this.inFlight === undefined
  )
  private readonly ids: CallEvents.CallIds
  /** The tool's name on the server (without the provider's prefix). */
  private readonly name: string
  private started = false
  /** `undefined` while the call is open; `null` once it completed; the error once it failed. */
  private outcome: ToolError | null | undefined = undefined
  private result: CallToolResult | undefined = undefined
  private failure: McpFailure | undefined = undefined
  private inFlight: AbortController | undefined = undefined
  private lease: Pool.Lease | undefined = undefined
  private identity: Identity | Effect.Effect<Identity, McpFailure> | undefined = undefined
  private retried = false
  private stopped = false
  private span: Tracer.Span | undefined = undefined
  /** The toolbox's span, when the toolbox runs this call. */
  private outerSpan: Tracer.Span | undefined = undefined
  private timing = true
  private clock: Clock.Clock | undefined = undefined

  constructor(
    private readonly server: Server,
    private readonly call: ToolCall,
    private readonly context: ExecutionContext,
    private readonly options: RunOptions
  ) {
    this.ids = CallEvents.callIds(context, call)
    this.name = call.name.slice(server.prefix.length)
    const pulled = options.settle ? Effect.catchAllCause(this.loop, (cause) => this.crashed(cause)) : this.loop
    this.next = Effect.flatMap(pulled, (chunk) => {
      if (chunk !== undefined) return Effect.succeed(chunk)
      const outcome = this.outcome
      return outcome instanceof ToolError && !this.options.settle ? Effect.fail(outcome) : Effect.succeed(undefined)
    })
  }

  get done(): boolean {
    return this.outcome !== undefined && this.buffer.size === 0 && !(this.outcome instanceof ToolError && !this.options.settle)
  }

  /**
   * What the reader pulls: `step`, where with `settle` a defect (a bug) ends the call as
   * `tool-error`; without `settle` the call's failure fails the read once its events are out.
   */
  readonly next: Effect.Effect<Chunk.Chunk<ToolEvent> | undefined, ToolError>

  private readonly loop: Effect.Effect<Chunk.Chunk<ToolEvent> | undefined> = Effect.suspend(() => this.step)

  private get step(): Effect.Effect<Chunk.Chunk<ToolEvent> | undefined> {
    if (!this.started) return this.begin
    if (this.result !== undefined || this.failure !== undefined) return Effect.zipRight(this.settle(), this.loop)
    const chunk = this.buffer.take()
    if (chunk !== undefined) return Effect.succeed(chunk)
    if (this.outcome !== undefined) return Effect.succeed(undefined)
    if (this.inFlight === undefined) return Effect.zipRight(this.prepare, this.loop)
    return Effect.zipRight(this.buffer.waitForNews, this.loop)
  }

  private crashed(cause: Cause.Cause<never>): Effect.Effect<Chunk.Chunk<ToolEvent> | undefined> {
    const logged = Settlement.isCrash(cause) ? Settlement.logCrash([this.call], this.context.contextId, cause) : Effect.void
    return Effect.zipRight(
      logged,
      Effect.sync(() => {
        this.inFlight?.abort()
        this.inFlight = undefined
        if (this.outcome === undefined) this.finish(Settlement.settle(this.call, cause))
        return this.buffer.take()
      })
    )
  }

  /** Ends the call with a failure: with `settle` its `tool-error` event, otherwise the read's failure. */
  private finish(error: ToolError): void {
    this.outcome = error
    if (!this.options.settle) return
    const millis = this.clock === undefined ? Date.now() : this.clock.unsafeCurrentTimeMillis()
    this.buffer.push(CallEvents.errorEvent(this.ids, timestampOf(millis), error))
  }

  private timestamp(): string {
    return timestampOf(this.clock!.unsafeCurrentTimeMillis())
  }

  /** The first pull: the spans, `tool-start`, and the call itself when nothing needs waiting for. */
  private readonly begin: Effect.Effect<Chunk.Chunk<ToolEvent> | undefined> = Effect.clockWith((clock) => {
    this.started = true
    this.clock = clock
    const { call, server } = this
    this.buffer.push(CallEvents.startEvent(this.ids, this.timestamp(), Redaction.showArguments(call.arguments)))
    // Calls that cannot be made end here, without asking the server.
    if (call.argumentsError !== undefined) {
      this.finish(CallEvents.toolError(call, "InvalidArguments", call.argumentsError))
      return Effect.succeed(this.buffer.take())
    }
    if (!call.name.startsWith(server.prefix)) {
      this.finish(
        CallEvents.toolError(call, "NotFound", `MCP server '${server.serverId}' offers only tools named '${server.prefix}*'`)
      )
      return Effect.succeed(this.buffer.take())
    }
    return Effect.map(this.openSpans, () => {
      this.identity = resolveIdentity(server.caller, this.context.authContext)
      if (!Effect.isEffect(this.identity)) {
        this.lease = server.pool.tryLease(this.identity)
        const connection = this.lease?.connection
        if (connection !== undefined && listedHas(connection, this.name) === true) this.launch(connection)
      }
      return this.buffer.take()
    })
  })

  private get openSpans(): Effect.Effect<void> {
    const attributes = { "mcp.server": this.server.serverId, "tool.name": this.name, "tool.call_id": this.call.id }
    const outer = this.options.span
    const own = (parent: Tracer.Span | undefined) =>
      Effect.map(
        Effect.makeSpan("McpToolProvider.execute", {
          captureStackTrace: false,
          attributes,
          ...(parent !== undefined ? { parent } : {})
        }),
        (span) => {
          this.span = span
        }
      )
    const spans = outer === undefined ? own(undefined) : Effect.flatMap(
      Effect.makeSpan(outer.name, { captureStackTrace: false, attributes: outer.attributes }),
      (span) => {
        this.outerSpan = span
        return own(span)
      }
    )
    return Effect.zipRight(
      spans,
      Effect.map(FiberRef.get(FiberRef.currentTracerTimingEnabled), (timing) => {
        this.timing = timing
      })
    )
  }

  /** Whatever the first pull could not do at once: headers, connecting, listing; then the call. */
  private readonly prepare: Effect.Effect<void> = Effect.suspend(() => {
    const identity = this.identity!
    return (Effect.isEffect(identity) ? identity : Effect.succeed(identity)).pipe(
      Effect.flatMap((identity) => {
        this.identity = identity
        const connection = this.lease?.connection
        return connection !== undefined
          ? Effect.succeed(connection)
          : this.server.pool.lease(identity, (lease) => this.lease = lease)
      }),
      Effect.tap((connection) => ensureListed(this.server, connection, this.name)),
      Effect.matchEffect({
        onFailure: (failure) => {
          this.failure = failure
          return Effect.void
        },
        onSuccess: (connection) => Effect.sync(() => this.launch(connection))
      }),
      Effect.withParentSpan(this.span!)
    )
  })

  private launch(connection: Connection): void {
    const controller = new AbortController()
    this.inFlight = controller
    startCall(
      connection,
      this.name,
      Redaction.revealArguments(this.call.arguments),
      controller.signal,
      (progress) => {
        if (this.stopped || this.outcome !== undefined) return
        this.buffer.push(CallEvents.progressEvent(this.ids, this.timestamp(), progressFields(progress), true))
      },
      // Settled: from now on closing the read must not abort (which would tell the server to cancel).
      (result) => {
        if (this.inFlight === controller) this.inFlight = undefined
        this.result = result
        this.buffer.wake()
      },
      (failure) => {
        if (this.inFlight === controller) this.inFlight = undefined
        this.failure = failure
        this.buffer.wake()
      }
    )
  }

  /** Turns what the server answered into the last event or the failure; an expired session is retried once. */
  private settle(): Effect.Effect<void> {
    const result = this.result
    const failure = this.failure
    this.result = undefined
    this.failure = undefined
    this.inFlight = undefined
    if (result === undefined) return this.fail(failure!)
    if (result.isError !== true) {
      this.buffer.push(CallEvents.completeEvent(this.ids, this.timestamp(), this.cleanResult(resultOf(result))))
      this.outcome = null
      return Effect.void
    }
    return this.fail(
      new McpFailure({
        kind: "ExecutionFailed",
        message: scrub(textOf(result.content), this.secrets) || `'${this.name}' reported an error`,
        ...(result.structuredContent !== undefined ? { details: result.structuredContent } : {})
      })
    )
  }

  /** The credentials the connection was made with (headers, a stdio server's env). */
  private get secrets(): ReadonlyArray<string> {
    return this.lease?.connection?.secrets ?? (this.identity as Identity).secrets
  }

  /** A result with the connection's credentials scrubbed out. */
  private cleanResult(value: unknown): unknown {
    const secrets = this.secrets
    return secrets.length === 0 ? value : Redaction.scrubValue(value, Redaction.scrubber(secrets))
  }

  private fail(failure: McpFailure): Effect.Effect<void> {
    const { pool } = this.server
    const lease = this.lease
    if (lease !== undefined && dropsConnection(failure)) {
      if (failure.kind === "SessionExpired" && !this.retried) {
        // Re-initialize once: the next pull leases a new connection and calls again.
        this.retried = true
        this.lease = undefined
        return Effect.zipRight(pool.invalidate(lease), pool.release(lease))
      }
      this.finish(callError(this.server, this.call, this.name, failure))
      return pool.invalidate(lease)
    }
    if (failure.kind === "SessionExpired" && !this.retried) {
      this.retried = true
      return Effect.void
    }
    this.finish(callError(this.server, this.call, this.name, failure))
    return Effect.void
  }

  /** The reading ended: abort a request still in flight, end the spans, give the connection back. */
  close(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    this.stopped = true
    this.inFlight?.abort()
    this.inFlight = undefined
    const now = this.timing && this.clock !== undefined ? this.clock.unsafeCurrentTimeNanos() : BigInt(0)
    const outcome = this.outcome
    this.span?.end(now, outcome === null ? Exit.void : outcome instanceof ToolError ? Exit.fail(outcome) : exit)
    this.outerSpan?.end(now, exit)
    this.span = undefined
    this.outerSpan = undefined
    const lease = this.lease
    this.lease = undefined
    return lease === undefined ? Effect.void : this.server.pool.release(lease)
  }
}

const textOf = (content: CallToolResult["content"]): string =>
  content.flatMap((item) => (item.type === "text" ? [item.text] : [])).join("\n")

/** `structuredContent` when the server sent it; else the text (joined), or the content items. */
const resultOf = (result: CallToolResult): unknown => {
  if (result.structuredContent !== undefined) return result.structuredContent
  return result.content.every((item) => item.type === "text") ? textOf(result.content) : result.content
}

const progressFields = (progress: Progress): CallEvents.ProgressReport => ({
  progress: progress.progress,
  ...(progress.total !== undefined ? { total: progress.total } : {}),
  ...(progress.message !== undefined ? { message: progress.message } : {})
})
