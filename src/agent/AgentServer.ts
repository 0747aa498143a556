/**
 * Serves an agent as an A2A agent over HTTP, on the official `@a2a-js/sdk` server pieces: a
 * `DefaultRequestHandler` with a task store (in memory, or in a database through `storage`) and its JSON-RPC transport (streaming and
 * blocking messages, task lookup, cancellation), plus the agent card, mounted on an
 * `@effect/platform` HTTP server. The agent is any `run` function returning a stream of
 * `AgentEvent`s, so `Agent.run` plugs in directly and tests can script one.
 *
 * What it accepts, and why:
 * - **Who may call.** Only requests whose `Host` names the server (its bound `host:port`; on
 *   loopback also `localhost`, `127.0.0.1` and `[::1]` with the port) or a name in
 *   `allowedHosts`, and, when they carry an `Origin` (a web page sent them), only from the
 *   server's own origin or one in `allowedOrigins`; others get 403. A page the user visits can
 *   reach 127.0.0.1, and by rebinding its own name to it even read the answers; these checks
 *   stop both.
 * - **Tokens.** With `bearerToken`, JSON-RPC requires `Authorization: Bearer <token>`. Bound to
 *   loopback without one, none is required: the `Host`/`Origin` checks keep web pages out, the
 *   other callers are programs of this machine, and an agent discovered by its card
 *   (`AgentTools.fromUrl`) has no way to learn a generated token. Bound to any other interface
 *   without one, a random token is generated and returned as `Info.bearerToken`, so an agent is
 *   never open to the network by accident.
 * - **Limits.** Bodies over `maxBodyBytes` are refused with 413 before they are read (by their
 *   `Content-Length`) or as soon as they stream past it. Finished tasks are dropped from the
 *   task store `taskTtl` after they finished, and beyond `maxTasks` the oldest finished go
 *   first; when all `maxTasks` are still in progress, a message that would start a new task is
 *   answered `rejected`.
 * - **A client that leaves.** When the client of a streamed message, or of a blocking
 *   `SendMessage`, disconnects, its run is interrupted (its model request and tools with it) and
 *   the task ends `canceled`: nobody is left to read the answer, and an agent should not spend
 *   tokens and run tools for nobody. A non-blocking send (`returnImmediately: true`) asked for
 *   the task to go on without it, so it does; so does a run watched through `SubscribeToTask`.
 *
 * @since 0.1.0
 */
import { AgentCard } from "@a2a-js/sdk"
import { DefaultRequestHandler, JsonRpcTransportHandler } from "@a2a-js/sdk/server"
import type { ServeError } from "@effect/platform/HttpServerError"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as Http from "node:http"
import type { AgentError } from "../domain/Errors.js"
import type { AgentEvent } from "../domain/Events.js"
import type { AuthContext } from "../domain/ExecutionContext.js"
import { makeApp } from "./internal/serverApp.js"
import { requiredToken } from "./internal/serverAuth.js"
import { makeCard } from "./internal/serverCard.js"
import { RunExecutor } from "./internal/serverExecutor.js"
import { makeGuard } from "./internal/serverGuard.js"
import type { Service as StorageService } from "../storage/Storage.js"
import { BoundedTaskStore, type ServedTaskStore } from "./internal/serverTaskStore.js"
import { SqlTaskStore } from "./internal/serverTaskStoreSql.js"

/** What a served run receives: the caller's prompt and the A2A ids of its task. @since 0.1.0 */
export interface RunInput {
  readonly prompt: string
  readonly contextId: string
  readonly taskId: string
  readonly authContext?: AuthContext
}

/** The agent behind the server, for example `(input) => Agent.run(...)`. @since 0.1.0 */
export type Run<R = never> = (input: RunInput) => Stream.Stream<AgentEvent, AgentError, R>

/** What the agent card says about the agent. @since 0.1.0 */
export interface CardInfo {
  readonly name: string
  readonly description: string
  readonly version?: string
  readonly skills?: ReadonlyArray<{
    readonly id: string
    readonly name: string
    readonly description: string
    readonly tags?: ReadonlyArray<string>
    readonly examples?: ReadonlyArray<string>
  }>
}

/** The agent to serve, where to bind, who may call and how much it keeps. @since 0.1.0 */
export interface Options<R = never> {
  readonly card: CardInfo
  readonly run: Run<R>
  /** Interface to bind; 127.0.0.1 unless said otherwise. */
  readonly host?: string
  /** Port to bind; 0 (the default) picks a free one. */
  readonly port?: number
  /**
   * When set, JSON-RPC requests must carry `Authorization: Bearer <token>` (the card stays
   * public). When not set: none on a loopback `host`; a generated one (see `Info.bearerToken`)
   * on any other interface.
   */
  readonly bearerToken?: string | Redacted.Redacted<string>
  /**
   * Pass the caller's bearer token to `run` as `authContext.credentials.accessToken`, so tools
   * can act as the caller. Off by default: a server's own guard token should not travel on.
   */
  readonly forwardCredentials?: boolean
  /**
   * More names clients may use in `Host`, besides the bound address (and, on loopback,
   * `localhost`, `127.0.0.1` and `[::1]`): `"agent.example.com"` allows it on any port,
   * `"agent.example.com:8443"` on that port only. Needed behind a proxy or for a name in DNS.
   */
  readonly allowedHosts?: ReadonlyArray<string>
  /**
   * Web origins (`"https://app.example.com"`) whose pages may call the agent; they also get the
   * CORS headers to read its answers. The server's own origin is always allowed; requests
   * without an `Origin` (programs, not pages) are not affected. None by default.
   */
  readonly allowedOrigins?: ReadonlyArray<string>
  /** Largest request body accepted, in bytes; larger ones get 413. 1 MiB by default. */
  readonly maxBodyBytes?: number
  /**
   * How long a finished task (completed, failed, canceled, rejected) stays readable through
   * `GetTask`/`ListTasks` after it finished; 1 hour by default. Dropped within a minute after.
   */
  readonly taskTtl?: Duration.DurationInput
  /**
   * Most tasks kept at once; beyond it the oldest finished tasks are dropped, and when every kept
   * task is still in progress a new one is rejected. 10,000 by default.
   */
  readonly maxTasks?: number
  /**
   * Keep the tasks in this database (`Storage.make`/`Storage.Storage`: SQLite or PostgreSQL)
   * instead of in memory, so `GetTask`, `ListTasks` and `SubscribeToTask` answer after a
   * restart, and from every replica that shares the database. `taskTtl` and `maxTasks` apply.
   */
  readonly storage?: StorageService
}

/** A running server: its base URL, port and the agent card's URL. @since 0.1.0 */
export interface Info {
  readonly url: string
  readonly port: number
  readonly cardUrl: string
  /**
   * The token clients must send as `Authorization: Bearer <token>`, when one is required: the
   * one given, or the one generated for a server bound beyond loopback. Show it to whoever
   * configures the clients; never log it.
   */
  readonly bearerToken?: Redacted.Redacted<string>
}

/**
 * The server could not listen where it was asked: `PortInUse` (another program holds the port),
 * `PermissionDenied` (a port the system reserves), `AddressUnavailable` (`host` is not an
 * address of this machine) or `Failed`. The message says what to do about it.
 *
 * @since 0.1.0
 */
export class BindError extends Schema.TaggedError<BindError>("effect-agent-kernel/AgentServer/BindError")("BindError", {
  reason: Schema.Literal("PortInUse", "PermissionDenied", "AddressUnavailable", "Failed"),
  host: Schema.String,
  port: Schema.Number,
  message: Schema.String
}) {}

/** The running server, for programs that started it with `layer`. @since 0.1.0 */
export class AgentServer extends Context.Tag("effect-agent-kernel/AgentServer")<AgentServer, Info>() {}

/**
 * Starts serving for the lifetime of the scope; runs still going when it closes are interrupted
 * and their tasks end `canceled`. Binding failures (a port in use, say) fail with `BindError`; limits
 * that cannot work (`maxTasks: 0`) are defects, with a message naming the option.
 *
 * @example
 * ```ts
 * const { url } = yield* AgentServer.make({
 *   card: { name: "Helper", description: "Answers questions" },
 *   run: (input) => Agent.run({ prompt: input.prompt }).pipe(Stream.provideLayer(layers))
 * })
 * ```
 * @since 0.1.0
 */
export const make = <R = never>(options: Options<R>): Effect.Effect<Info, BindError, Scope.Scope | R> =>
  Effect.gen(function*() {
    const limits = yield* limitsOf(options)
    const host = options.host ?? "127.0.0.1"
    let nodeServer: Http.Server | undefined
    const server = yield* NodeHttpServer.make(() => (nodeServer = Http.createServer()), { port: options.port ?? 0, host }).pipe(
      Effect.mapError((error) => bindError(error, host, options.port ?? 0))
    )
    // Open SSE connections would hold `close` forever; the runs behind them end below.
    yield* Effect.addFinalizer(() => Effect.sync(() => nodeServer?.closeAllConnections()))
    const port = server.address._tag === "TcpAddress" ? server.address.port : 0
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`
    const bearerToken = requiredToken(options.bearerToken, host)
    const card = makeCard(options.card, url, bearerToken !== undefined)
    const clock = yield* Effect.clock
    const now = () => clock.unsafeCurrentTimeMillis()
    const ttlMillis = Duration.toMillis(limits.taskTtl)
    const store: ServedTaskStore = options.storage === undefined
      ? new BoundedTaskStore(limits.maxTasks, ttlMillis, now)
      : new SqlTaskStore(options.storage, limits.maxTasks, ttlMillis, now)
    // A database's failure to evict is logged and tried again next time; the server stays up.
    const evict = Effect.tryPromise(async () => store.evictExpired()).pipe(
      Effect.catchAll((error) => Effect.logWarning("AgentServer: dropping expired tasks failed", error.cause))
    )
    if (options.storage !== undefined) yield* evict
    if (Duration.isFinite(limits.taskTtl)) {
      yield* evict.pipe(
        Effect.schedule(Schedule.spaced(Duration.min(limits.taskTtl, Duration.minutes(1)))),
        Effect.forkScoped
      )
    }
    const runFork = yield* FiberSet.makeRuntime<R>()
    const executor = new RunExecutor({
      run: options.run,
      runFork,
      forwardCredentials: options.forwardCredentials === true,
      hasRoom: () => store.hasRoom(),
      maxTasks: limits.maxTasks
    })
    const guard = makeGuard({ host, port, allowedHosts: options.allowedHosts ?? [], allowedOrigins: options.allowedOrigins ?? [] })
    yield* server.serve(makeApp({
      url,
      guard,
      card,
      cardBody: AgentCard.toJSON(card),
      transport: new JsonRpcTransportHandler(new DefaultRequestHandler(card, store, executor)),
      executor,
      runFork,
      bearerToken,
      forwardCredentials: options.forwardCredentials === true,
      maxBodyBytes: limits.maxBodyBytes
    }))
    return { url, port, cardUrl: `${url}/.well-known/agent-card.json`, ...(bearerToken !== undefined ? { bearerToken } : {}) }
  })

/**
 * `make` as a Layer providing `AgentServer`.
 *
 * @since 0.1.0
 */
export const layer = <R = never>(options: Options<R>): Layer.Layer<AgentServer, BindError, R> =>
  Layer.scoped(AgentServer, make(options))

const limitsOf = (options: Pick<Options, "maxBodyBytes" | "maxTasks" | "taskTtl">) =>
  Effect.suspend(() => {
    const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024
    const maxTasks = options.maxTasks ?? 10_000
    const taskTtl = Duration.decode(options.taskTtl ?? "1 hour")
    if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1) {
      return Effect.dieMessage(`AgentServer: maxBodyBytes must be a whole number of bytes above 0, not ${maxBodyBytes}.`)
    }
    if (!Number.isSafeInteger(maxTasks) || maxTasks < 1) {
      return Effect.dieMessage(`AgentServer: maxTasks must be a whole number above 0, not ${maxTasks}.`)
    }
    if (Duration.lessThanOrEqualTo(taskTtl, Duration.zero)) {
      return Effect.dieMessage("AgentServer: taskTtl must be longer than zero (use Duration.infinity to keep tasks).")
    }
    return Effect.succeed({ maxBodyBytes, maxTasks, taskTtl })
  })

/** The platform reports a failed `listen` as "An error has occurred"; the system's code says which. */
const bindError = (error: ServeError, host: string, port: number): BindError => {
  const cause = error.cause
  const code = Predicate.hasProperty(cause, "code") ? String(cause.code) : undefined
  const where = `port ${port} on ${host}`
  const fail = (reason: BindError["reason"], advice: string) =>
    new BindError({ reason, host, port, message: `AgentServer could not start: ${advice}` })
  switch (code) {
    case "EADDRINUSE":
      return fail("PortInUse", `${where} is in use; stop what uses it or pick another port (port: 0 picks a free one).`)
    case "EACCES":
      return fail(
        "PermissionDenied",
        `the system refused ${where} (ports below 1024 need privileges); pick another port (port: 0 picks a free one).`
      )
    case "EADDRNOTAVAIL":
    case "ENOTFOUND":
      return fail(
        "AddressUnavailable",
        `${host} is not an address of this machine; bind 127.0.0.1 (the default), 0.0.0.0 or one of its interfaces' addresses.`
      )
    default:
      return fail("Failed", `listening on ${where} failed (${cause instanceof Error ? cause.message : String(cause)}).`)
  }
}
