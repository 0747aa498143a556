/**
 * Real MCP servers for tests and benchmarks: the reference `server-everything` (stdio and
 * Streamable HTTP) and `server-filesystem` (stdio) from node_modules, and a small SDK `Server`
 * over Streamable HTTP (or legacy HTTP+SSE) on 127.0.0.1 that records every HTTP request it
 * receives and can be told to misbehave (forget sessions, refuse a token, add a tool).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { createRequire } from "node:module"
import * as path from "node:path"
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { SSEServerTransport } from "@modelcontextprotocol/sdk/server/sse.js"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import {
  CallToolRequestSchema,
  type CallToolResult,
  ListToolsRequestSchema,
  type Tool
} from "@modelcontextprotocol/sdk/types.js"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

const require = createRequire(import.meta.url)
const packageDir = (name: string) => path.dirname(require.resolve(`${name}/package.json`))

/** `node_modules/@modelcontextprotocol/server-everything/dist/index.js` (transport as first argument). */
export const everythingEntry = path.join(packageDir("@modelcontextprotocol/server-everything"), "dist", "index.js")
/** `node_modules/@modelcontextprotocol/server-filesystem/dist/index.js` (allowed directories as arguments). */
export const filesystemEntry = path.join(packageDir("@modelcontextprotocol/server-filesystem"), "dist", "index.js")

/** Stdio options for server-everything, run by this Node binary. */
export const everythingStdio = {
  command: process.execPath,
  args: [everythingEntry, "stdio"],
  stderr: "ignore"
} as const

/**
 * Stdio options for server-everything started through `sh`, which writes the server's pid
 * (`exec` keeps it) to `pidFile` so a test can kill the real process.
 */
export const everythingStdioWithPidFile = (pidFile: string) =>
  ({
    command: "sh",
    args: ["-c", "echo $$ > \"$0\" && exec \"$1\" \"$2\" stdio", pidFile, process.execPath, everythingEntry],
    stderr: "ignore"
  }) as const

/** Stdio options for server-filesystem allowed to touch `directory` only. */
export const filesystemStdio = (directory: string) =>
  ({ command: process.execPath, args: [filesystemEntry, directory], stderr: "ignore" }) as const

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => resolve(port))
    })
  })

const stopChild = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
  })

/**
 * server-everything over Streamable HTTP, listening on a port chosen here (it reads `PORT`);
 * its MCP endpoint is `url`. Killed when the scope closes.
 */
export const everythingHttp: Effect.Effect<{ readonly url: string }, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(async () => {
    const port = await freePort()
    const child = spawn(process.execPath, [everythingEntry, "streamableHttp"], {
      env: { PATH: process.env.PATH ?? "", PORT: String(port) },
      stdio: ["ignore", "ignore", "pipe"]
    })
    await new Promise<void>((resolve, reject) => {
      let seen = ""
      let started = false
      const timer = setTimeout(() => reject(new Error(`server-everything did not start: ${seen}`)), 15_000)
      // Kept reading after start-up, so a chatty server never blocks on a full pipe.
      child.stderr!.on("data", (chunk: Buffer) => {
        if (started) return
        seen += chunk.toString()
        if (seen.includes("listening on port")) {
          started = true
          clearTimeout(timer)
          resolve()
        }
      })
      child.once("exit", (code) => reject(new Error(`server-everything exited (${code}): ${seen}`)))
    })
    return { child, url: `http://127.0.0.1:${port}/mcp` }
  }),
  ({ child }) => Effect.promise(() => stopChild(child))
)

/** One HTTP request the test server received, with the JSON-RPC messages of its body. */
export interface RecordedRequest {
  readonly httpMethod: string
  readonly path: string
  readonly authorization: string | undefined
  readonly sessionId: string | undefined
  readonly messages: ReadonlyArray<{ readonly method?: string; readonly id?: unknown; readonly params?: any }>
  /** The response status once headers were sent (0 before): an SSE stream has its status while still open. */
  readonly status: number
}

/** The in-test server and the handles a test steers it with. */
export interface TestServer {
  readonly url: string
  /** Every HTTP request, in arrival order. */
  readonly requests: Array<RecordedRequest>
  /** Request ids whose handler saw its `AbortSignal` fire (the client's notifications/cancelled). */
  readonly aborted: Array<string | number>
  /** Resolves when the `wait` tool has been called this many times. */
  readonly waitStarted: (count: number) => Promise<void>
  /** Adds a tool and tells every session its tool list changed. */
  readonly addTool: (name: string) => Promise<void>
  /** Forgets every session, so their next request gets 404 (an expired session). */
  readonly forgetSessions: () => void
  /** When set, every request carrying a session id gets 404, including after re-initializing. */
  expireEverySession: boolean
  /** Bearer tokens answered with 401 (whose body, like a careless server's, echoes the token). */
  readonly refusedTokens: Set<string>
  /** JSON-RPC methods seen, in order. */
  readonly methods: () => ReadonlyArray<string>
}

const baseTools: ReadonlyArray<Tool> = [
  {
    name: "echo",
    description: "Echoes text",
    inputSchema: { type: "object", properties: { text: { type: "string" } }, required: ["text"] }
  },
  { name: "fail", description: "Always reports an error", inputSchema: { type: "object", properties: {} } },
  {
    name: "wait",
    description: "Waits until cancelled (or `ms` milliseconds)",
    inputSchema: { type: "object", properties: { ms: { type: "number" } } }
  }
]

const readBody = (req: IncomingMessage): Promise<unknown> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8")
      try {
        resolve(text === "" ? undefined : JSON.parse(text))
      } catch (error) {
        reject(error)
      }
    })
    req.on("error", reject)
  })

const header = (req: IncomingMessage, name: string): string | undefined => {
  const value = req.headers[name]
  return Array.isArray(value) ? value[0] : value
}

const listen = (server: HttpServer): Promise<number> =>
  new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)))

const closeHttp = (server: HttpServer): Promise<void> =>
  new Promise((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })

/**
 * The in-test SDK `Server`: tools `echo`, `fail` (an `isError` result), `wait` (until
 * cancelled), plus tools added at runtime; `tools/list` answers `pageSize` tools per page.
 * `legacySse` serves the old HTTP+SSE transport instead (GET `/mcp` for the stream, POST
 * `/messages`), answering a Streamable HTTP POST to `/mcp` with 405.
 */
export const testServer = (
  options: { readonly pageSize?: number; readonly legacySse?: boolean } = {}
): Effect.Effect<TestServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const tools: Array<Tool> = [...baseTools]
      const pageSize = options.pageSize ?? 100
      const sessions = new Map<string, { readonly transport: StreamableHTTPServerTransport; readonly server: Server }>()
      const legacySessions = new Map<string, SSEServerTransport>()
      const allServers = new Set<Server>()
      const waiters: Array<{ readonly count: number; readonly resolve: () => void }> = []
      let waitCalls = 0

      const makeServer = () => {
        const server = new Server({ name: "test-peer", version: "1.0.0" }, { capabilities: { tools: { listChanged: true } } })
        server.setRequestHandler(ListToolsRequestSchema, async (request) => {
          const offset = Number(request.params?.cursor ?? "0")
          const next = offset + pageSize
          return { tools: tools.slice(offset, next), ...(next < tools.length ? { nextCursor: String(next) } : {}) }
        })
        server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
          const args = (request.params.arguments ?? {}) as Record<string, unknown>
          switch (request.params.name) {
            case "fail":
              return { isError: true, content: [{ type: "text", text: "the disk is full" }] }
            case "wait": {
              waitCalls++
              for (const waiter of waiters.filter((w) => w.count <= waitCalls)) waiter.resolve()
              const ms = typeof args.ms === "number" ? args.ms : 30_000
              await new Promise<void>((resolve) => {
                const timer = setTimeout(resolve, ms)
                extra.signal.addEventListener("abort", () => {
                  clearTimeout(timer)
                  peer.aborted.push(extra.requestId)
                  resolve()
                })
              })
              return { content: [{ type: "text", text: `waited ${ms} ms` }] }
            }
            default:
              if (!tools.some((tool) => tool.name === request.params.name)) {
                return { isError: true, content: [{ type: "text", text: `unknown tool ${request.params.name}` }] }
              }
              return { content: [{ type: "text", text: `${request.params.name}: ${String(args.text ?? "")}` }] }
          }
        })
        allServers.add(server)
        server.onclose = () => allServers.delete(server)
        return server
      }

      const record = (req: IncomingMessage, res: ServerResponse, body: unknown): RecordedRequest => {
        const messages = (Array.isArray(body) ? body : body === undefined ? [] : [body]) as RecordedRequest["messages"]
        const entry: RecordedRequest = {
          httpMethod: req.method ?? "",
          path: new URL(req.url ?? "/", "http://127.0.0.1").pathname,
          authorization: header(req, "authorization"),
          sessionId: header(req, "mcp-session-id"),
          messages,
          get status() {
            return res.headersSent ? res.statusCode : 0
          }
        }
        peer.requests.push(entry)
        return entry
      }

      const json = (res: ServerResponse, status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body))
      }

      const handleStreamable = async (req: IncomingMessage, res: ServerResponse, body: unknown) => {
        const sessionId = header(req, "mcp-session-id")
        if (sessionId !== undefined) {
          const session = peer.expireEverySession ? undefined : sessions.get(sessionId)
          if (session === undefined) {
            return json(res, 404, { jsonrpc: "2.0", error: { code: -32001, message: "Session not found" }, id: null })
          }
          return session.transport.handleRequest(req, res, body)
        }
        if (req.method !== "POST") return json(res, 400, { error: "no session" })
        const server = makeServer()
        const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (id) => {
            sessions.set(id, { transport, server })
          }
        })
        await server.connect(transport)
        await transport.handleRequest(req, res, body)
      }

      const handleLegacy = async (req: IncomingMessage, res: ServerResponse, body: unknown, pathname: string) => {
        if (req.method === "GET" && pathname === "/mcp") {
          const transport = new SSEServerTransport("/messages", res)
          legacySessions.set(transport.sessionId, transport)
          res.on("close", () => legacySessions.delete(transport.sessionId))
          await makeServer().connect(transport)
          return
        }
        if (req.method === "POST" && pathname === "/messages") {
          const id = new URL(req.url ?? "/", "http://127.0.0.1").searchParams.get("sessionId") ?? ""
          const transport = legacySessions.get(id)
          if (transport === undefined) return json(res, 404, { error: "unknown session" })
          return transport.handlePostMessage(req, res, body)
        }
        return json(res, 405, { error: "method not allowed" })
      }

      const http = createServer((req, res) => {
        void (async () => {
          const body = req.method === "POST" ? await readBody(req) : undefined
          const entry = record(req, res, body)
          const token = entry.authorization?.replace(/^Bearer /, "")
          if (token !== undefined && peer.refusedTokens.has(token)) {
            return json(res, 401, { error: `token ${token} is not valid here` })
          }
          const pathname = entry.path
          if (options.legacySse === true) return handleLegacy(req, res, body, pathname)
          if (pathname !== "/mcp") return json(res, 404, { error: "not found" })
          return handleStreamable(req, res, body)
        })().catch((error) => {
          if (!res.headersSent) json(res, 500, { error: String(error) })
        })
      })
      const port = await listen(http)

      const peer: TestServer & { readonly close: () => Promise<void> } = {
        url: `http://127.0.0.1:${port}/mcp`,
        requests: [],
        aborted: [],
        waitStarted: (count) =>
          new Promise((resolve) => {
            if (waitCalls >= count) resolve()
            else waiters.push({ count, resolve })
          }),
        addTool: async (name) => {
          tools.push({ name, description: `added at runtime`, inputSchema: { type: "object", properties: {} } })
          await Promise.all([...allServers].map((server) => server.sendToolListChanged().catch(() => undefined)))
        },
        forgetSessions: () => sessions.clear(),
        expireEverySession: false,
        refusedTokens: new Set(),
        methods: () => peer.requests.flatMap((r) => r.messages.flatMap((m) => (m.method !== undefined ? [m.method] : []))),
        close: async () => {
          await Promise.all([...allServers].map((server) => server.close().catch(() => undefined)))
          await closeHttp(http)
        }
      }
      return peer
    }),
    (peer) => Effect.promise(() => peer.close())
  )
