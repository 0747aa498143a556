/**
 * One MCP connection: an SDK `Client` over Streamable HTTP (falling back to legacy HTTP+SSE),
 * or over stdio to a child process, plus the tool list cached on it. A connection belongs to
 * one identity, so the headers it was built with are the only credentials it ever sends.
 *
 * @internal
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import {
  type CallToolResult,
  type Progress,
  type Tool,
  ToolListChangedNotificationSchema
} from "@modelcontextprotocol/sdk/types.js"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import type * as Scope from "effect/Scope"
import * as Redaction from "../../domain/Redaction.js"
import { classify, McpFailure, suggestsLegacySse } from "./mcpErrors.js"

/** Where the server is. */
export type Endpoint =
  | { readonly _tag: "Http"; readonly url: URL }
  | {
    readonly _tag: "Stdio"
    readonly command: string
    readonly args: ReadonlyArray<string>
    readonly env: Readonly<Record<string, string>>
    readonly cwd: string | undefined
    readonly stderr: "inherit" | "ignore"
  }

/** What every connection of one provider shares. */
export interface Settings {
  readonly serverId: string
  readonly clientInfo: { readonly name: string; readonly version: string }
  readonly timeoutMs: number
  /**
   * Learned once per provider: after a server refused Streamable HTTP, later connections go
   * straight to legacy SSE instead of probing again.
   */
  readonly learned: { legacySse: boolean }
}

interface ToolCache {
  readonly generation: number
  readonly tools: Deferred.Deferred<ReadonlyArray<Tool>, McpFailure>
  /** The listed names, once the listing succeeded: what a call checks without waiting. */
  names: ReadonlySet<string> | undefined
}

/** A live connection. `closed` and `generation` are written by SDK callbacks. */
export interface Connection {
  readonly client: Client
  readonly secrets: ReadonlyArray<string>
  readonly scope: Scope.Scope
  readonly settings: Settings
  closed: boolean
  /** Bumped by `notifications/tools/list_changed`; a cache of an older generation is stale. */
  generation: number
  toolCache: ToolCache | undefined
  /** Progress callbacks of the calls in flight, by the progress token sent with each. */
  readonly progress: Map<string, (progress: Progress) => void>
  nextProgressToken: number
}

const transportFor = (
  endpoint: Endpoint,
  headers: Readonly<Record<string, string>>,
  legacy: boolean
): Transport => {
  if (endpoint._tag === "Stdio") {
    return new StdioClientTransport({
      command: endpoint.command,
      args: [...endpoint.args],
      // The SDK adds only its safe defaults (HOME, LOGNAME, PATH, SHELL, TERM, USER) to this,
      // never the rest of process.env.
      env: { ...endpoint.env },
      stderr: endpoint.stderr,
      ...(endpoint.cwd !== undefined ? { cwd: endpoint.cwd } : {})
    })
  }
  const requestInit = { headers: { ...headers } }
  return legacy
    ? new SSEClientTransport(endpoint.url, { requestInit })
    : new StreamableHTTPClientTransport(endpoint.url, { requestInit })
}

const open = (
  endpoint: Endpoint,
  headers: Readonly<Record<string, string>>,
  settings: Settings,
  secrets: ReadonlyArray<string>,
  legacy: boolean
): Effect.Effect<{ readonly client: Client; readonly transport: Transport }, unknown> =>
  Effect.tryPromise({
    try: async (signal) => {
      const client = new Client(settings.clientInfo, { capabilities: {} })
      const transport = transportFor(endpoint, headers, legacy)
      try {
        await client.connect(transport, { signal, timeout: settings.timeoutMs })
      } catch (error) {
        await client.close().catch(() => undefined)
        throw error
      }
      return { client, transport }
    },
    catch: (error) => error
  }).pipe(Effect.mapError((error) => (suggestsLegacySse(error) ? error : classify(error, secrets))))

/**
 * Connects and performs the `initialize` handshake; the connection is closed (the session
 * terminated, the child process stopped) when the scope closes.
 */
export const connect = (
  endpoint: Endpoint,
  headers: Readonly<Record<string, string>>,
  secrets: ReadonlyArray<string>,
  settings: Settings
): Effect.Effect<Connection, McpFailure, Scope.Scope> =>
  Effect.gen(function*() {
    // A stdio server gets its credentials through its environment, and may echo them.
    if (endpoint._tag === "Stdio") secrets = [...secrets, ...Redaction.secretsOfEnvironment(endpoint.env)]
    const legacyFirst = endpoint._tag === "Http" && settings.learned.legacySse
    const opened = yield* open(endpoint, headers, settings, secrets, legacyFirst).pipe(
      Effect.catchIf(
        (error) => !(error instanceof McpFailure),
        // A 4xx to the initialize POST is how a legacy HTTP+SSE server says it does not speak
        // Streamable HTTP (the spec's backwards-compatibility procedure). Only a legacy connection
        // that works is remembered: a wrong URL must not pin the provider to the old transport.
        () =>
          Effect.tap(open(endpoint, headers, settings, secrets, true), () => {
            settings.learned.legacySse = true
          })
      ),
      Effect.mapError((error) => classify(error, secrets))
    )
    const scope = yield* Effect.scope
    const connection: Connection = {
      client: opened.client,
      secrets,
      scope,
      settings,
      closed: false,
      generation: 0,
      toolCache: undefined,
      progress: new Map(),
      nextProgressToken: 0
    }
    routeProgress(connection, opened.transport)
    opened.client.onclose = () => {
      connection.closed = true
    }
    opened.client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      connection.generation++
    })
    yield* Effect.addFinalizer(() => close(connection, opened.transport))
    return connection
  })

/**
 * Delivers progress notifications as they arrive, before anything queued after them. The SDK's
 * `onprogress` runs notification handlers a microtask late but settles the response at once,
 * so the last progress of a call that finishes right after it is dropped; reading them off the
 * transport keeps every one, in order.
 */
const routeProgress = (connection: Connection, transport: Transport): void => {
  const deliver = transport.onmessage
  transport.onmessage = (message, extra) => {
    if ("method" in message && message.method === "notifications/progress" && !("id" in message)) {
      const params = message.params as Partial<Progress> & { readonly progressToken?: unknown } | undefined
      const route = connection.progress.get(String(params?.progressToken))
      if (route !== undefined && typeof params?.progress === "number") {
        route({
          progress: params.progress,
          ...(typeof params.total === "number" ? { total: params.total } : {}),
          ...(typeof params.message === "string" ? { message: params.message } : {})
        })
        return
      }
    }
    deliver?.(message, extra)
  }
}

const close = (connection: Connection, transport: Transport): Effect.Effect<void> =>
  Effect.promise(async () => {
    connection.closed = true
    // Ending the session lets the server free it now instead of at its own timeout.
    if (transport instanceof StreamableHTTPClientTransport && transport.sessionId !== undefined) {
      await Promise.race([
        transport.terminateSession().catch(() => undefined),
        new Promise((resolve) => setTimeout(resolve, 1_000).unref())
      ])
    }
    await connection.client.close().catch(() => undefined)
  })

const MAX_PAGES = 1_000

const fetchAllTools = (connection: Connection): Effect.Effect<ReadonlyArray<Tool>, McpFailure> =>
  Effect.tryPromise({
    try: async (signal) => {
      const tools: Array<Tool> = []
      const seen = new Set<string>()
      let cursor: string | undefined
      for (let page = 0; page < MAX_PAGES; page++) {
        const result = await connection.client.listTools(cursor === undefined ? {} : { cursor }, {
          signal,
          timeout: connection.settings.timeoutMs
        })
        tools.push(...result.tools)
        cursor = result.nextCursor
        if (cursor === undefined) return tools
        if (seen.has(cursor)) {
          throw new McpFailure({ kind: "ExecutionFailed", message: `tools/list repeated the cursor '${cursor}'` })
        }
        seen.add(cursor)
      }
      throw new McpFailure({ kind: "ExecutionFailed", message: `tools/list returned more than ${MAX_PAGES} pages` })
    },
    catch: (error) => classify(error, connection.secrets)
  })

/**
 * The server's tools, following `nextCursor` through every page. Cached on the connection until
 * the server says the list changed (or `refresh` is asked); concurrent callers share one listing.
 */
export const listTools = (
  connection: Connection,
  refresh = false
): Effect.Effect<ReadonlyArray<Tool>, McpFailure> =>
  Effect.suspend(() => {
    const cached = connection.toolCache
    if (!refresh && cached !== undefined && cached.generation === connection.generation) {
      return Deferred.await(cached.tools)
    }
    // Made synchronously, so no other fiber can slip in between the check and the store.
    const entry: ToolCache = {
      generation: connection.generation,
      tools: Deferred.unsafeMake<ReadonlyArray<Tool>, McpFailure>(FiberId.none),
      names: undefined
    }
    connection.toolCache = entry
    // The listing belongs to the connection, not to the caller that happened to start it, so an
    // interrupted caller does not leave the others waiting forever.
    return Effect.forkIn(fetchAllTools(connection), connection.scope).pipe(
      Effect.tap((fiber) =>
        Effect.sync(() =>
          fiber.addObserver((exit) => {
            const outcome = Exit.isInterrupted(exit)
              ? Exit.fail(new McpFailure({ kind: "Transport", message: "the connection closed while listing tools" }))
              : exit
            // A failed listing is not cached: the next caller asks again.
            if (Exit.isFailure(outcome) && connection.toolCache === entry) connection.toolCache = undefined
            if (Exit.isSuccess(outcome)) entry.names = new Set(outcome.value.map((tool) => tool.name))
            Deferred.unsafeDone(entry.tools, outcome)
          })
        )
      ),
      Effect.zipRight(Deferred.await(entry.tools))
    )
  })

/**
 * Whether the server has a tool, when the connection's current listing says so; `undefined`
 * when only a (re)listing can tell (none yet, one in flight, or stale).
 */
export const listedHas = (connection: Connection, name: string): boolean | undefined => {
  const cached = connection.toolCache
  return cached === undefined || cached.generation !== connection.generation || cached.names === undefined
    ? undefined
    : cached.names.has(name)
}

/**
 * Starts `tools/call` with a progress token: `onProgress` sees every progress notification for
 * it, then exactly one of `onResult` and `onFailure` is called. Aborting `signal` makes the SDK
 * send notifications/cancelled. A plain callback API, so a call in flight costs no fiber.
 */
export const startCall = (
  connection: Connection,
  name: string,
  args: Record<string, unknown>,
  signal: AbortSignal,
  onProgress: (progress: Progress) => void,
  onResult: (result: CallToolResult) => void,
  onFailure: (failure: McpFailure) => void
): void => {
  const progressToken = `eak-${++connection.nextProgressToken}`
  connection.progress.set(progressToken, onProgress)
  let pending: Promise<unknown>
  try {
    pending = connection.client.callTool({ name, arguments: args, _meta: { progressToken } }, undefined, {
      signal,
      timeout: connection.settings.timeoutMs
    })
  } catch (error) {
    connection.progress.delete(progressToken)
    return onFailure(classify(error, connection.secrets))
  }
  pending.then(
    (result) => {
      connection.progress.delete(progressToken)
      onResult(result as CallToolResult)
    },
    (error) => {
      connection.progress.delete(progressToken)
      onFailure(classify(error, connection.secrets))
    }
  )
}
