/**
 * Tools of an MCP server (seed 000's `McpToolProvider`), on the official SDK `Client`: over
 * Streamable HTTP (falling back to legacy HTTP+SSE), or over stdio to a child process started
 * with a minimal environment. Connections are scoped resources, kept per caller identity so
 * per-user credentials never cross.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { ConfigError, ToolError } from "../domain/Errors.js"
import type { ToolEvent } from "../domain/Events.js"
import type { AuthContext, ExecutionContext } from "../domain/ExecutionContext.js"
import type { ToolCall, ToolDefinition } from "../domain/Message.js"
import { McpCall } from "./internal/mcpCall.js"
import * as Server from "./internal/mcpServer.js"
import type { RunOptions, Runner, ToolProvider } from "./ToolProvider.js"
import { readsToStream } from "./ToolProvider.js"

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
  Effect.map(Server.make(options), (server) => {
    const execute = (call: ToolCall, context: ExecutionContext): Stream.Stream<ToolEvent, ToolError> =>
      readsToStream(() => new McpCall(server, call, context, providerContract)) as Stream.Stream<ToolEvent, ToolError>
    // For `Toolbox`, which hands this provider one call at a time (it does not batch): the call
    // settled (a failure is its `tool-error` event) inside the toolbox's span.
    const runner: Runner = (calls, context, runOptions) => {
      if (calls.length !== 1) throw new Error(`McpToolProvider runs one call at a time, was given ${calls.length}`)
      return new McpCall(server, calls[0]!, context, runOptions)
    }
    const getTools = Server.getToolsAs(server, undefined)
    return {
      name: server.serverId,
      serverId: server.serverId,
      getTools,
      getTool: (name: string) => Effect.map(getTools, (tools) => Option.fromNullable(tools.find((tool) => tool.name === name))),
      getToolsFor: (context: ExecutionContext) => Server.getToolsAs(server, context.authContext),
      execute,
      runner: { run: runner, batches: false, execute }
    } satisfies McpToolProvider
  })

const providerContract: RunOptions = { settle: false, concurrency: 1 }

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
