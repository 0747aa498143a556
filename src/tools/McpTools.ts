/**
 * Tools of an MCP server (seed 000's `McpToolProvider`), on the official SDK `Client`: over
 * Streamable HTTP (falling back to legacy HTTP+SSE), or over stdio to a child process started
 * with a minimal environment. Connections are scoped resources, kept per caller identity so
 * per-user credentials never cross.
 *
 * @since 0.1.0
 */
import type { CallToolResult, Progress, Tool } from "@modelcontextprotocol/sdk/types.js"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Tracer from "effect/Tracer"
import { ConfigError, ToolError } from "../domain/Errors.js"
import {
  timestampOf,
  ToolCompleteEvent,
  ToolErrorEvent,
  type ToolEvent,
  ToolProgressEvent,
  ToolStartEvent
} from "../domain/Events.js"
import type { AuthContext, ExecutionContext } from "../domain/ExecutionContext.js"
import type { ToolCall, ToolDefinition } from "../domain/Message.js"
import {
  type Connection,
  connect,
  listedHas,
  listTools,
  type Settings,
  startCall
} from "./internal/mcpConnection.js"
import { dropsConnection, McpFailure, scrub, toolErrorReason } from "./internal/mcpErrors.js"
import { anonymous, identities, type Identity } from "./internal/mcpIdentity.js"
import { checkOptions } from "./internal/mcpOptions.js"
import * as Pool from "./internal/mcpPool.js"
import type { Reads, RunOptions, Runner, ToolProvider } from "./ToolProvider.js"
import { readsToStream, toolError } from "./ToolProvider.js"
import * as Redaction from "../domain/Redaction.js"
import { revealArguments, showArguments } from "../domain/Redaction.js"

/** Request headers for one identity. @since 0.1.0 */
export type Headers = Readonly<Record<string, string>>

/**
 * Builds the headers for a caller: plain, a Promise, or an Effect. It receives `undefined` for
 * calls made without an execution context (`getTools`). Unwrap the `Redacted` access token here
 * and nowhere else; `bearerHeaders` does it for the common case.
 *
 * @since 0.1.0
 */
export type GetHeaders = (
  authContext: AuthContext | undefined
) => Headers | PromiseLike<Headers> | Effect.Effect<Headers, unknown>

/** @since 0.1.0 */
export interface CommonOptions {
  /** Names the server in errors, spans and (with `prefix`) tool names. */
  readonly serverId: string
  /**
   * Bound on each request to the server: connecting, each `tools/list` page, and the call itself
   * (default 60 seconds). A call past it fails with `Timeout` and the server is sent
   * `notifications/cancelled`.
   */
  readonly timeout?: Duration.DurationInput
  /** Offer the tools as `<serverId>__<tool>`, against collisions with other providers. */
  readonly prefix?: boolean
  /** How this client introduces itself in `initialize`. */
  readonly clientInfo?: { readonly name: string; readonly version: string }
  /** How long an unused connection stays open (default 5 minutes). */
  readonly idleTimeToLive?: Duration.DurationInput
}

/**
 * A server reached over HTTP. `getHeaders` (seed 001; seed 000 calls it `getAuthHeaders`, and
 * both are accepted) is applied to every request made for an execution, `tools/list` included.
 *
 * @since 0.1.0
 */
export interface HttpServerOptions extends CommonOptions {
  readonly serverUrl: string | URL
  readonly getHeaders?: GetHeaders
  readonly getAuthHeaders?: GetHeaders
  readonly command?: never
}

/**
 * A server started as a child process speaking stdio. The child sees only `env` plus the SDK's
 * safe defaults (`HOME`, `LOGNAME`, `PATH`, `SHELL`, `TERM`, `USER`), never the rest of this
 * process's environment; pass a credential it needs through `env`.
 *
 * @since 0.1.0
 */
export interface StdioServerOptions extends CommonOptions {
  readonly command: string
  readonly args?: ReadonlyArray<string>
  readonly env?: Readonly<Record<string, string>>
  readonly cwd?: string
  /** What happens to the child's stderr (default `"inherit"`). */
  readonly stderr?: "inherit" | "ignore"
  readonly serverUrl?: never
}

/** @since 0.1.0 */
export type McpToolProviderOptions = HttpServerOptions | StdioServerOptions

/**
 * A `ToolProvider` for one MCP server. `getTools` and `getTool` list the tools as the anonymous
 * identity (no auth context: `getHeaders(undefined)`); `getToolsFor` lists them as the caller of
 * an execution, for servers whose tools depend on who asks.
 *
 * @since 0.1.0
 */
export interface McpToolProvider extends ToolProvider {
  readonly serverId: string
  readonly getToolsFor: (context: ExecutionContext) => Effect.Effect<ReadonlyArray<ToolDefinition>, ToolError>
}

/**
 * `Authorization: Bearer <token>` for a caller with an access token, no headers otherwise.
 *
 * @example
 * ```ts
 * McpTools.make({ serverId: "files", serverUrl: "http://localhost:3100/mcp", getHeaders: McpTools.bearerHeaders })
 * ```
 * @since 0.1.0
 */
export const bearerHeaders = (authContext: AuthContext | undefined): Headers => {
  const token = authContext?.credentials?.accessToken
  return token === undefined ? {} : { Authorization: `Bearer ${Redacted.value(token)}` }
}

const PREFIX_SEPARATOR = "__"

/** What `getHeaders` returned, as headers: it may be plain, a Promise or an Effect. */
const headersFrom = (out: unknown): Effect.Effect<Headers, McpFailure> => {
  const resolved: Effect.Effect<unknown, unknown> = Effect.isEffect(out)
    ? out as Effect.Effect<unknown, unknown>
    : typeof out === "object" && out !== null && typeof (out as PromiseLike<Headers>).then === "function"
    ? Effect.tryPromise({ try: () => Promise.resolve(out), catch: (error) => error })
    : Effect.succeed(out)
  return resolved.pipe(
    Effect.mapError(getHeadersFailed),
    Effect.filterOrFail(isHeaders, () => notHeaders)
  )
}

// The cause is the caller's code and may mention a credential: only its kind is reported.
const getHeadersFailed = (error: unknown) =>
  new McpFailure({ kind: "Unauthorized", message: `getHeaders failed${error instanceof Error ? ` (${error.name})` : ""}` })

const notHeaders = new McpFailure({ kind: "Unauthorized", message: "getHeaders must return a record of header strings" })

const isHeaders = (headers: unknown): headers is Headers =>
  typeof headers === "object" && headers !== null && !Effect.isEffect(headers) &&
  typeof (headers as PromiseLike<unknown>).then !== "function" &&
  Object.values(headers).every((v) => typeof v === "string")

const providerContract: RunOptions = { settle: false, concurrency: 1 }

const describeDefect = (defect: unknown): string =>
  defect instanceof Error ? defect.message : typeof defect === "string" ? defect : String(defect)

const textOf = (content: CallToolResult["content"]): string =>
  content.flatMap((item) => (item.type === "text" ? [item.text] : [])).join("\n")

/** `structuredContent` when the server sent it; else the text (joined), or the content items. */
const resultOf = (result: CallToolResult): unknown => {
  if (result.structuredContent !== undefined) return result.structuredContent
  return result.content.every((item) => item.type === "text") ? textOf(result.content) : result.content
}

const progressFields = (progress: Progress) => ({
  progress: progress.progress,
  ...(progress.total !== undefined ? { total: progress.total } : {}),
  ...(progress.message !== undefined ? { message: progress.message } : {})
})

/**
 * Connects lazily to an MCP server and offers its tools. Connections open on first use, one
 * per identity (a digest of the user id and the headers `getHeaders` built), are closed after
 * `idleTimeToLive` without use, and all of them when the scope closes. An expired session
 * (HTTP 404) is re-initialized once and the request retried; a connection that failed (the
 * server died) is dropped, so the next call reconnects. Invalid options fail with `ConfigError`.
 *
 * @example
 * ```ts
 * const program = Effect.gen(function*() {
 *   const files = yield* McpTools.make({
 *     serverId: "files",
 *     command: "npx",
 *     args: ["@modelcontextprotocol/server-filesystem", "/tmp/work"]
 *   })
 *   return yield* files.getTools
 * }).pipe(Effect.scoped)
 * ```
 * @since 0.1.0
 */
export const make = (options: McpToolProviderOptions): Effect.Effect<McpToolProvider, ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const checked = yield* checkOptions(options)
    const { endpoint, getHeaders, serverId, timeout } = checked
    const timeoutMs = Duration.toMillis(timeout)
    const settings: Settings = { serverId, clientInfo: checked.clientInfo, timeoutMs, learned: { legacySse: false } }
    const pool = yield* Pool.make({
      connect: (identity: Identity) =>
        connect(endpoint, Redacted.value(identity.headers), identity.secrets, settings).pipe(
          // The SDK bounds the initialize request, not the transport's start (a legacy SSE stream
          // that never sends its endpoint would wait forever), so the whole connect is bounded here.
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () => new McpFailure({ kind: "Timeout", message: `connecting took longer than ${timeoutMs} ms` })
          }),
          Effect.withSpan("McpToolProvider.connect", { attributes: { "mcp.server": serverId } })
        ),
      idleTimeToLive: checked.idleTimeToLive
    })

    /** Uses the identity's connection once; a failure that leaves it unusable drops it. */
    const attempt = <A>(identity: Identity, use: (connection: Connection) => Effect.Effect<A, McpFailure>) =>
      Effect.suspend(() => {
        let held: Pool.Lease | undefined
        return Effect.flatMap(pool.lease(identity, (lease) => held = lease), (connection) =>
          use(connection).pipe(
            Effect.tapError((failure) => (dropsConnection(failure) ? pool.invalidate(held!) : Effect.void))
          )).pipe(Effect.ensuring(Effect.suspend(() => held === undefined ? Effect.void : pool.release(held))))
      })

    const withConnection = <A>(identity: Identity, use: (connection: Connection) => Effect.Effect<A, McpFailure>) =>
      attempt(identity, use).pipe(
        Effect.catchIf((failure) => failure.kind === "SessionExpired", () => attempt(identity, use))
      )

    const identityOf = (authContext: AuthContext | undefined): Effect.Effect<Identity, McpFailure> =>
      getHeaders === undefined
        ? Effect.succeed(anonymous)
        : Effect.suspend(() => {
          try {
            return identityFrom(authContext, getHeaders(authContext))
          } catch (error) {
            return Effect.fail(getHeadersFailed(error))
          }
        })

    const identify = identities()

    const identityFrom = (authContext: AuthContext | undefined, out: unknown): Effect.Effect<Identity, McpFailure> =>
      Effect.map(headersFrom(out), (headers) => identify(authContext?.userId, headers))

    const prefix = checked.prefix ? `${serverId}${PREFIX_SEPARATOR}` : ""
    const toDefinition = (tool: Tool): ToolDefinition => ({
      name: `${prefix}${tool.name}`,
      description: tool.description ?? tool.title ?? "",
      parameters: tool.inputSchema as Record<string, unknown>
    })

    const listFailure = (failure: McpFailure) =>
      new ToolError({
        reason: toolErrorReason(failure.kind),
        toolName: "tools/list",
        toolCallId: "",
        message: `MCP server '${serverId}': ${failure.message}`
      })

    const getToolsAs = (authContext: AuthContext | undefined) =>
      identityOf(authContext).pipe(
        Effect.flatMap((identity) => withConnection(identity, (connection) => listTools(connection))),
        Effect.map((tools) => tools.map(toDefinition)),
        Effect.mapError(listFailure),
        Effect.withSpan("McpToolProvider.getTools", { attributes: { "mcp.server": serverId } })
      )

    // The tool list is fetched once per connection before the first call: it makes an unknown
    // name a clear `NotFound` and lets the SDK validate `structuredContent` against the tool's
    // output schema. A miss refreshes the list once, for tools added since.
    const ensureListed = (connection: Connection, name: string): Effect.Effect<void, McpFailure> => {
      const has = (tools: ReadonlyArray<Tool>) => tools.some((tool) => tool.name === name)
      return Effect.flatMap(listTools(connection), (tools) =>
        has(tools) ? Effect.void : Effect.flatMap(listTools(connection, true), (fresh) =>
          has(fresh)
            ? Effect.void
            : Effect.fail(new McpFailure({ kind: "NotFound", message: `MCP server '${serverId}' has no tool '${name}'` }))))
    }

    const callError = (call: ToolCall, name: string, failure: McpFailure): ToolError =>
      toolError(
        call,
        toolErrorReason(failure.kind),
        failure.kind === "ExecutionFailed"
          ? failure.message
          : failure.kind === "Timeout"
          ? `MCP server '${serverId}' did not answer '${name}' within ${timeoutMs} ms`
          : `MCP server '${serverId}': ${failure.message}`,
        failure.details
      )

    const execute = (call: ToolCall, context: ExecutionContext): Stream.Stream<ToolEvent, ToolError> =>
      readsToStream(() => new CallRun(call, context, providerContract)) as Stream.Stream<ToolEvent, ToolError>

    // For `Toolbox`, which hands this provider one call at a time (it does not batch): the call
    // settled (a failure is its `tool-error` event) inside the toolbox's span.
    const runner: Runner = (calls, context, options) => {
      if (calls.length !== 1) throw new Error(`McpToolProvider runs one call at a time, was given ${calls.length}`)
      return new CallRun(calls[0]!, context, options)
    }

    /**
     * One call behind one stream stage. The stream pulls `next`: the first pull emits
     * `tool-start` and, when the identity's connection is open and its tool list known, starts
     * `tools/call` at once (no fiber: the SDK's promise and progress callbacks fill `buffer`);
     * otherwise the next pull connects or lists first. Closing the stream early aborts the
     * request (the SDK sends notifications/cancelled) and gives the connection back.
     */
    class CallRun implements Reads {
      private buffer: Array<ToolEvent> = []
      readonly name: string
      private started = false
      /** `undefined` while the call is open; `null` once it completed; the error once it failed. */
      outcome: ToolError | null | undefined = undefined
      private result: CallToolResult | undefined = undefined
      private failure: McpFailure | undefined = undefined
      private inFlight: AbortController | undefined = undefined
      private lease: Pool.Lease | undefined = undefined
      private identity: Identity | undefined = undefined
      /** What `getHeaders` returned when it was not plain headers: resolved by the slow path. */
      private headers: unknown = undefined
      private retried = false
      private stopped = false
      private span: Tracer.Span | undefined = undefined
      /** The toolbox's span, when the toolbox runs this call. */
      private outerSpan: Tracer.Span | undefined = undefined
      private timing = true
      private clock: Clock.Clock | undefined = undefined
      private wake: ((effect: Effect.Effect<void>) => void) | undefined = undefined

      constructor(readonly call: ToolCall, readonly context: ExecutionContext, readonly options: RunOptions) {
        this.name = call.name.slice(prefix.length)
        const pulled = options.settle ? Effect.catchAllCause(this.loop, (cause) => this.crashed(cause)) : this.loop
        this.next = Effect.flatMap(pulled, (chunk) => {
          if (chunk !== undefined) return Effect.succeed(chunk)
          const outcome = this.outcome
          return outcome instanceof ToolError && !this.options.settle ? Effect.fail(outcome) : Effect.succeed(undefined)
        })
      }

      get done(): boolean {
        return this.outcome !== undefined && this.buffer.length === 0 && !(this.outcome instanceof ToolError && !this.options.settle)
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
        if (this.buffer.length > 0) return Effect.succeed(this.drain())
        if (this.outcome !== undefined) return Effect.succeed(undefined)
        if (this.inFlight === undefined) return Effect.zipRight(this.prepare, this.loop)
        return Effect.zipRight(this.waitForEvents, this.loop)
      }

      private crashed(cause: Cause.Cause<never>): Effect.Effect<Chunk.Chunk<ToolEvent> | undefined> {
        const { call } = this
        return Effect.zipRight(
          Effect.logError("A tool provider crashed", Cause.pretty(cause)).pipe(
            Effect.annotateLogs({ toolNames: call.name, contextId: this.context.contextId })
          ),
          Effect.suspend(() => {
            this.inFlight?.abort()
            this.inFlight = undefined
            if (this.outcome === undefined) {
              this.finish(toolError(call, "ExecutionFailed", `Tool "${call.name}" crashed: ${describeDefect(Cause.squash(cause))}`))
            }
            return this.buffer.length > 0 ? Effect.succeed(this.drain()) : Effect.succeed(undefined)
          })
        )
      }

      /** Ends the call with a failure: with `settle` its `tool-error` event, otherwise the stream's failure. */
      private finish(error: ToolError): void {
        this.outcome = error
        if (!this.options.settle) return
        const { call, context } = this
        this.buffer.push(
          new ToolErrorEvent({
            type: "tool-error",
            contextId: context.contextId,
            taskId: context.taskId,
            toolCallId: call.id,
            toolName: call.name,
            timestamp: timestampOf(this.clock === undefined ? Date.now() : this.clock.unsafeCurrentTimeMillis()),
            reason: error.reason,
            error: error.message
          }, true)
        )
      }

      private drain(): Chunk.Chunk<ToolEvent> {
        const chunk = Chunk.unsafeFromArray(this.buffer)
        this.buffer = []
        return chunk
      }

      // Checked again as the wait begins: the fiber may have yielded since `step` looked, and a
      // signal given meanwhile found nobody to wake.
      private readonly waitForEvents: Effect.Effect<void> = Effect.async<void>((resume) => {
        if (
          this.result !== undefined || this.failure !== undefined || this.buffer.length > 0 ||
          this.outcome !== undefined || this.inFlight === undefined
        ) return resume(Effect.void)
        this.wake = resume
        return Effect.sync(() => {
          this.wake = undefined
        })
      })

      private signal(): void {
        const wake = this.wake
        if (wake !== undefined) {
          this.wake = undefined
          wake(Effect.void)
        }
      }

      private timestamp(): string {
        return timestampOf(this.clock!.unsafeCurrentTimeMillis())
      }

      /** The first pull: the spans, `tool-start`, and the call itself when nothing needs waiting for. */
      private readonly begin: Effect.Effect<Chunk.Chunk<ToolEvent>> = Effect.clockWith((clock) => {
        this.started = true
        this.clock = clock
        const { call, context } = this
        this.buffer.push(
          new ToolStartEvent({
            type: "tool-start",
            contextId: context.contextId,
            taskId: context.taskId,
            toolCallId: call.id,
            toolName: call.name,
            timestamp: this.timestamp(),
            arguments: showArguments(call.arguments)
          }, true)
        )
        // Calls that cannot be made end here, without asking the server.
        if (call.argumentsError !== undefined) {
          this.finish(toolError(call, "InvalidArguments", call.argumentsError))
          return Effect.succeed(this.drain())
        }
        if (!call.name.startsWith(prefix)) {
          this.finish(toolError(call, "NotFound", `MCP server '${serverId}' offers only tools named '${prefix}*'`))
          return Effect.succeed(this.drain())
        }
        return Effect.map(this.openSpans, () => {
          this.identity = this.identitySync()
          if (this.identity !== undefined) {
            this.lease = pool.tryLease(this.identity)
            const connection = this.lease?.connection
            if (connection !== undefined && listedHas(connection, this.name) === true) this.launch(connection)
          }
          return this.drain()
        })
      })

      private get openSpans(): Effect.Effect<void> {
        const attributes = { "mcp.server": serverId, "tool.name": this.name, "tool.call_id": this.call.id }
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

      /** The identity when `getHeaders` answers with plain headers (or there is none). */
      private identitySync(): Identity | undefined {
        if (getHeaders === undefined) return anonymous
        const authContext = this.context.authContext
        try {
          const out = getHeaders(authContext)
          if (isHeaders(out)) return identify(authContext?.userId, out)
          this.headers = out
        } catch (error) {
          // Reported like a failed Effect from `getHeaders` (only the error's kind).
          this.headers = Effect.fail(error)
        }
        return undefined
      }

      /** Whatever the first pull could not do at once: headers, connecting, listing; then the call. */
      private readonly prepare: Effect.Effect<void> = Effect.suspend(() => {
        const identity: Effect.Effect<Identity, McpFailure> = this.identity !== undefined
          ? Effect.succeed(this.identity)
          : identityFrom(this.context.authContext, this.headers)
        return identity.pipe(
          Effect.flatMap((identity) => {
            this.identity = identity
            const connection = this.lease?.connection
            return connection !== undefined
              ? Effect.succeed(connection)
              : pool.lease(identity, (lease) => this.lease = lease)
          }),
          Effect.tap((connection) => ensureListed(connection, this.name)),
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
        const { call, context } = this
        startCall(
          connection,
          this.name,
          revealArguments(call.arguments),
          controller.signal,
          (progress) => {
            if (this.stopped || this.outcome !== undefined) return
            this.buffer.push(
              new ToolProgressEvent({
                type: "tool-progress",
                contextId: context.contextId,
                taskId: context.taskId,
                toolCallId: call.id,
                toolName: call.name,
                timestamp: this.timestamp(),
                ...progressFields(progress)
              })
            )
            this.signal()
          },
          // Settled: from now on closing the stream must not abort (which would tell the server to cancel).
          (result) => {
            if (this.inFlight === controller) this.inFlight = undefined
            this.result = result
            this.signal()
          },
          (failure) => {
            if (this.inFlight === controller) this.inFlight = undefined
            this.failure = failure
            this.signal()
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
        if (result !== undefined) {
          if (result.isError !== true) {
            const { call, context } = this
            this.buffer.push(
              new ToolCompleteEvent({
                type: "tool-complete",
                contextId: context.contextId,
                taskId: context.taskId,
                toolCallId: call.id,
                toolName: call.name,
                timestamp: this.timestamp(),
                result: this.cleanResult(resultOf(result))
              }, true)
            )
            this.outcome = null
            return Effect.void
          }
          return this.fail(
            new McpFailure({
              kind: "ExecutionFailed",
              message: scrub(textOf(result.content), this.lease?.connection?.secrets ?? this.identity!.secrets) || `'${this.name}' reported an error`,
              ...(result.structuredContent !== undefined ? { details: result.structuredContent } : {})
            })
          )
        }
        return this.fail(failure!)
      }

      /** A result with the connection's credentials (headers, a stdio server's env) scrubbed out. */
      private cleanResult(value: unknown): unknown {
        const secrets = this.lease?.connection?.secrets ?? this.identity!.secrets
        return secrets.length === 0 ? value : Redaction.scrubValue(value, Redaction.scrubber(secrets))
      }

      private fail(failure: McpFailure): Effect.Effect<void> {
        const lease = this.lease
        if (lease !== undefined && dropsConnection(failure)) {
          if (failure.kind === "SessionExpired" && !this.retried) {
            // Re-initialize once: the next pull leases a new connection and calls again.
            this.retried = true
            this.lease = undefined
            return Effect.zipRight(pool.invalidate(lease), pool.release(lease))
          }
          this.finish(callError(this.call, this.name, failure))
          return pool.invalidate(lease)
        }
        if (failure.kind === "SessionExpired" && !this.retried) {
          this.retried = true
          return Effect.void
        }
        this.finish(callError(this.call, this.name, failure))
        return Effect.void
      }

      /** The stream closed: abort a request still in flight, end the spans, give the connection back. */
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
        return lease === undefined ? Effect.void : pool.release(lease)
      }
    }

    const getTools = getToolsAs(undefined)
    const provider = {
      name: serverId,
      serverId,
      getTools,
      getTool: (name: string) => Effect.map(getTools, (tools) => Option.fromNullable(tools.find((tool) => tool.name === name))),
      getToolsFor: (context: ExecutionContext) => getToolsAs(context.authContext),
      execute,
      runner: { run: runner, batches: false, execute }
    } satisfies McpToolProvider
    return provider
  })

/**
 * The seed's name for `make`: an MCP server's tools as a scoped `ToolProvider`.
 *
 * @since 0.1.0
 */
export const McpToolProvider: (options: McpToolProviderOptions) => Effect.Effect<McpToolProvider, ConfigError, Scope.Scope> =
  make

/**
 * The seed's `mcp(...)` helper: the same as `make`.
 *
 * @since 0.1.0
 */
export const mcp: (options: McpToolProviderOptions) => Effect.Effect<McpToolProvider, ConfigError, Scope.Scope> = make
