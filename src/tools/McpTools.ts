/**
 * Tools of an MCP server (seed 000's `McpToolProvider`), on the official SDK `Client`: over
 * Streamable HTTP (falling back to legacy HTTP+SSE), or over stdio to a child process started
 * with a minimal environment. Connections are scoped resources, kept per caller identity so
 * per-user credentials never cross.
 *
 * @since 0.1.0
 */
import type { CallToolResult, Progress, Tool } from "@modelcontextprotocol/sdk/types.js"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import * as RcMap from "effect/RcMap"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { ConfigError, ToolError } from "../domain/Errors.js"
import { timestampOf, type ToolEvent, ToolProgressEvent } from "../domain/Events.js"
import type { AuthContext, ExecutionContext } from "../domain/ExecutionContext.js"
import type { ToolCall, ToolDefinition } from "../domain/Message.js"
import { callTool, type Connection, connect, listTools, type Settings } from "./internal/mcpConnection.js"
import { dropsConnection, McpFailure, scrub, toolErrorReason } from "./internal/mcpErrors.js"
import { anonymous, identify, type Identity } from "./internal/mcpIdentity.js"
import { checkOptions } from "./internal/mcpOptions.js"
import type { ToolProvider } from "./ToolProvider.js"
import { toolCompleteEvent, toolError, toolStartEvent } from "./ToolProvider.js"

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

const resolveHeaders = (getHeaders: GetHeaders, authContext: AuthContext | undefined) =>
  Effect.try({ try: () => getHeaders(authContext), catch: (error) => error }).pipe(
    Effect.flatMap((out): Effect.Effect<unknown, unknown> => {
      if (Effect.isEffect(out)) return out
      if (typeof out === "object" && out !== null && typeof (out as PromiseLike<Headers>).then === "function") {
        return Effect.tryPromise({ try: () => Promise.resolve(out), catch: (error) => error })
      }
      return Effect.succeed(out)
    }),
    // The cause is the caller's code and may mention a credential: only its kind is reported.
    Effect.mapError((error) =>
      new McpFailure({
        kind: "Unauthorized",
        message: `getHeaders failed${error instanceof Error ? ` (${error.name})` : ""}`
      })
    ),
    Effect.filterOrFail(
      (headers): headers is Headers =>
        typeof headers === "object" && headers !== null && Object.values(headers).every((v) => typeof v === "string"),
      () => new McpFailure({ kind: "Unauthorized", message: "getHeaders must return a record of header strings" })
    )
  )

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
    const connections = yield* RcMap.make({
      lookup: (identity: Identity) =>
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

    const live = (identity: Identity): Effect.Effect<Connection, McpFailure, Scope.Scope> => {
      // A failed connect stays in the map until released; drop it so the next call tries again.
      const get = RcMap.get(connections, identity).pipe(Effect.tapError(() => RcMap.invalidate(connections, identity)))
      return Effect.flatMap(get, (connection) =>
        connection.closed ? Effect.zipRight(RcMap.invalidate(connections, identity), get) : Effect.succeed(connection))
    }

    const attempt = <A>(identity: Identity, use: (connection: Connection) => Effect.Effect<A, McpFailure>) =>
      Effect.scoped(
        Effect.flatMap(live(identity), (connection) =>
          use(connection).pipe(
            Effect.tapError((failure) => (dropsConnection(failure) ? RcMap.invalidate(connections, identity) : Effect.void))
          ))
      )

    const withConnection = <A>(identity: Identity, use: (connection: Connection) => Effect.Effect<A, McpFailure>) =>
      attempt(identity, use).pipe(
        Effect.catchIf((failure) => failure.kind === "SessionExpired", () => attempt(identity, use))
      )

    const identityOf = (authContext: AuthContext | undefined): Effect.Effect<Identity, McpFailure> =>
      getHeaders === undefined
        ? Effect.succeed(anonymous)
        : Effect.map(resolveHeaders(getHeaders, authContext), (headers) => identify(authContext?.userId, headers))

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

    const invoke = (
      call: ToolCall,
      name: string,
      authContext: AuthContext | undefined,
      onProgress: (progress: Progress) => void
    ): Effect.Effect<unknown, ToolError> =>
      identityOf(authContext).pipe(
        Effect.flatMap((identity) =>
          withConnection(identity, (connection) =>
            ensureListed(connection, name).pipe(
              Effect.zipRight(callTool(connection, name, call.arguments, onProgress)),
              Effect.flatMap((result) =>
                result.isError === true
                  ? Effect.fail(
                    new McpFailure({
                      kind: "ExecutionFailed",
                      message: scrub(textOf(result.content), identity.secrets) || `'${name}' reported an error`,
                      ...(result.structuredContent !== undefined ? { details: result.structuredContent } : {})
                    })
                  )
                  : Effect.succeed(resultOf(result))
              )
            ))
        ),
        Effect.mapError((failure) =>
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
        ),
        Effect.withSpan("McpToolProvider.execute", {
          attributes: { "mcp.server": serverId, "tool.name": name, "tool.call_id": call.id }
        })
      )

    const execute = (call: ToolCall, context: ExecutionContext): Stream.Stream<ToolEvent, ToolError> => {
      const start = Stream.fromEffect(toolStartEvent(context, call))
      if (call.argumentsError !== undefined) {
        return Stream.concat(start, Stream.fail(toolError(call, "InvalidArguments", call.argumentsError)))
      }
      if (!call.name.startsWith(prefix)) {
        return Stream.concat(
          start,
          Stream.fail(toolError(call, "NotFound", `MCP server '${serverId}' offers only tools named '${prefix}*'`))
        )
      }
      const name = call.name.slice(prefix.length)
      // One mailbox carries every event, in order: the call runs in its own fiber so progress
      // streams out while it is in flight, and closing the stream interrupts that fiber (which
      // aborts the request, and the SDK sends notifications/cancelled).
      const run = Effect.gen(function*() {
        const events = yield* Mailbox.make<ToolEvent, ToolError>()
        events.unsafeOffer(yield* toolStartEvent(context, call))
        const clock = yield* Effect.clock
        const onProgress = (progress: Progress) =>
          events.unsafeOffer(
            new ToolProgressEvent({
              type: "tool-progress",
              contextId: context.contextId,
              taskId: context.taskId,
              toolCallId: call.id,
              toolName: call.name,
              timestamp: timestampOf(clock.unsafeCurrentTimeMillis()),
              ...progressFields(progress)
            })
          )
        yield* invoke(call, name, context.authContext, onProgress).pipe(
          Effect.flatMap((result) => toolCompleteEvent(context, call, result)),
          Effect.exit,
          Effect.flatMap((exit) => {
            if (Exit.isSuccess(exit)) events.unsafeOffer(exit.value)
            return events.done(Exit.asVoid(exit))
          }),
          Effect.forkScoped
        )
        return Mailbox.toStream(events)
      })
      return Stream.unwrapScoped(run)
    }

    const getTools = getToolsAs(undefined)
    return {
      name: serverId,
      serverId,
      getTools,
      getTool: (name: string) => Effect.map(getTools, (tools) => Option.fromNullable(tools.find((tool) => tool.name === name))),
      getToolsFor: (context: ExecutionContext) => getToolsAs(context.authContext),
      execute
    } satisfies McpToolProvider
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
