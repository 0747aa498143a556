/**
 * One MCP server as its provider sees it: the checked options, its connections (one per
 * identity, see `mcpPool.ts`), who calls (`mcpCaller.ts`), its tools as definitions, and how a
 * failure is reported to the model. What `McpTools.make` builds and every call of it shares.
 *
 * @internal
 */
import type { Tool } from "@modelcontextprotocol/sdk/types.js"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { type ConfigError, ToolError } from "../../domain/Errors.js"
import type { AuthContext } from "../../domain/ExecutionContext.js"
import type { ToolCall, ToolDefinition } from "../../domain/Message.js"
import type { McpToolProviderOptions } from "../McpTools.js"
import { toolError } from "./callEvents.js"
import { type Caller, identityOf, makeCaller } from "./mcpCaller.js"
import { type Connection, connect, listTools, type Settings } from "./mcpConnection.js"
import { dropsConnection, McpFailure, toolErrorReason } from "./mcpErrors.js"
import type { Identity } from "./mcpIdentity.js"
import { checkOptions } from "./mcpOptions.js"
import * as Pool from "./mcpPool.js"

export interface Server {
  readonly serverId: string
  /** What the provider's tool names start with (`<serverId>__` with `prefix`, else nothing). */
  readonly prefix: string
  readonly timeoutMs: number
  readonly caller: Caller
  readonly pool: Pool.Pool
}

const PREFIX_SEPARATOR = "__"

/** Checks the options and sets up the connections, which open on first use. */
export const make = (options: McpToolProviderOptions): Effect.Effect<Server, ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const checked = yield* checkOptions(options)
    const { endpoint, serverId, timeout } = checked
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
    return {
      serverId,
      prefix: checked.prefix ? `${serverId}${PREFIX_SEPARATOR}` : "",
      timeoutMs,
      caller: makeCaller(checked.getHeaders),
      pool
    } satisfies Server
  })

/** Uses the identity's connection once; a failure that leaves it unusable drops it. */
const attempt = <A>(server: Server, identity: Identity, use: (connection: Connection) => Effect.Effect<A, McpFailure>) =>
  Effect.suspend(() => {
    let held: Pool.Lease | undefined
    return Effect.flatMap(server.pool.lease(identity, (lease) => held = lease), (connection) =>
      use(connection).pipe(
        Effect.tapError((failure) => (dropsConnection(failure) ? server.pool.invalidate(held!) : Effect.void))
      )).pipe(Effect.ensuring(Effect.suspend(() => held === undefined ? Effect.void : server.pool.release(held))))
  })

/** Uses the identity's connection, re-initializing an expired session once. */
const withConnection = <A>(server: Server, identity: Identity, use: (connection: Connection) => Effect.Effect<A, McpFailure>) =>
  attempt(server, identity, use).pipe(
    Effect.catchIf((failure) => failure.kind === "SessionExpired", () => attempt(server, identity, use))
  )

/** The server's tools as the caller with `authContext` sees them. */
export const getToolsAs = (
  server: Server,
  authContext: AuthContext | undefined
): Effect.Effect<ReadonlyArray<ToolDefinition>, ToolError> =>
  identityOf(server.caller, authContext).pipe(
    Effect.flatMap((identity) => withConnection(server, identity, (connection) => listTools(connection))),
    Effect.map((tools) => tools.map((tool) => toDefinition(server, tool))),
    Effect.mapError((failure) =>
      new ToolError({
        reason: toolErrorReason(failure.kind),
        toolName: "tools/list",
        toolCallId: "",
        message: `MCP server '${server.serverId}': ${failure.message}`
      })
    ),
    Effect.withSpan("McpToolProvider.getTools", { attributes: { "mcp.server": server.serverId } })
  )

const toDefinition = (server: Server, tool: Tool): ToolDefinition => ({
  name: `${server.prefix}${tool.name}`,
  description: tool.description ?? tool.title ?? "",
  parameters: tool.inputSchema as Record<string, unknown>
})

/**
 * Fails unless the server lists the tool. The list is fetched once per connection before the
 * first call: it makes an unknown name a clear `NotFound` and lets the SDK validate
 * `structuredContent` against the tool's output schema. A miss refreshes the list once, for
 * tools added since.
 */
export const ensureListed = (server: Server, connection: Connection, name: string): Effect.Effect<void, McpFailure> => {
  const has = (tools: ReadonlyArray<Tool>) => tools.some((tool) => tool.name === name)
  return Effect.flatMap(listTools(connection), (tools) =>
    has(tools) ? Effect.void : Effect.flatMap(listTools(connection, true), (fresh) =>
      has(fresh)
        ? Effect.void
        : Effect.fail(new McpFailure({ kind: "NotFound", message: `MCP server '${server.serverId}' has no tool '${name}'` }))))
}

/** The `ToolError` a call's failure is reported as; `name` is the tool's name on the server. */
export const callError = (server: Server, call: ToolCall, name: string, failure: McpFailure): ToolError =>
  toolError(
    call,
    toolErrorReason(failure.kind),
    failure.kind === "ExecutionFailed"
      ? failure.message
      : failure.kind === "Timeout"
      ? `MCP server '${server.serverId}' did not answer '${name}' within ${server.timeoutMs} ms`
      : `MCP server '${server.serverId}': ${failure.message}`,
    failure.details
  )
