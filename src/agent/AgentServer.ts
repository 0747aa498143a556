/**
 * Serves an agent as an A2A agent over HTTP, on the official `@a2a-js/sdk` server pieces: a
 * `DefaultRequestHandler` with an in-memory task store and its JSON-RPC transport (streaming and
 * blocking messages, task lookup, cancellation), plus the agent card, mounted on an
 * `@effect/platform` HTTP server. The agent is any `run` function returning a stream of
 * `AgentEvent`s, so `Agent.run` plugs in directly and tests can script one.
 *
 * @since 0.1.0
 */
import { AgentCard, Extensions, formatSSEErrorEvent, formatSSEEvent, SSE_HEADERS } from "@a2a-js/sdk"
import {
  type AgentExecutor,
  DefaultRequestHandler,
  defaultServerCallContextBuilder,
  type ExecutionEventBus,
  InMemoryTaskStore,
  JsonRpcTransportHandler,
  type RequestContext,
  UnauthenticatedUser,
  type User,
  validateVersion
} from "@a2a-js/sdk/server"
import type { ServeError } from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { createHash, timingSafeEqual } from "node:crypto"
import * as Http from "node:http"
import type { AgentError } from "../domain/Errors.js"
import type { AgentEvent } from "../domain/Events.js"
import type { AuthContext } from "../domain/ExecutionContext.js"
import { cardPaths, makeCard, rpcPath } from "./internal/serverCard.js"
import { cancelledEvent, Publisher, State, textOf } from "./internal/serverPublisher.js"

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

/** The agent to serve, where to bind, and the optional bearer-token guard. @since 0.1.0 */
export interface Options<R = never> {
  readonly card: CardInfo
  readonly run: Run<R>
  /** Interface to bind; 127.0.0.1 unless said otherwise. */
  readonly host?: string
  /** Port to bind; 0 (the default) picks a free one. */
  readonly port?: number
  /** When set, JSON-RPC requests must carry `Authorization: Bearer <token>` (the card stays public). */
  readonly bearerToken?: string | Redacted.Redacted<string>
  /**
   * Pass the caller's bearer token to `run` as `authContext.credentials.accessToken`, so tools
   * can act as the caller. Off by default: a server's own guard token should not travel on.
   */
  readonly forwardCredentials?: boolean
}

/** A running server: its base URL, port and the agent card's URL. @since 0.1.0 */
export interface Info {
  readonly url: string
  readonly port: number
  readonly cardUrl: string
}

/** The running server, for programs that started it with `layer`. @since 0.1.0 */
export class AgentServer extends Context.Tag("effect-agent-kernel/AgentServer")<AgentServer, Info>() {}

/**
 * Starts serving for the lifetime of the scope; runs still going when it closes are interrupted
 * and their tasks end `canceled`. Binding failures (port taken) fail with `ServeError`.
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
export const make = <R = never>(options: Options<R>): Effect.Effect<Info, ServeError, Scope.Scope | R> =>
  Effect.gen(function*() {
    const host = options.host ?? "127.0.0.1"
    let nodeServer: Http.Server | undefined
    const server = yield* NodeHttpServer.make(() => (nodeServer = Http.createServer()), { port: options.port ?? 0, host })
    // Open SSE connections would hold `close` forever; the runs behind them end below.
    yield* Effect.addFinalizer(() => Effect.sync(() => nodeServer?.closeAllConnections()))
    const port = server.address._tag === "TcpAddress" ? server.address.port : 0
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`
    const card = makeCard(options.card, url, options.bearerToken !== undefined)
    const runFork = yield* FiberSet.makeRuntime<R>()
    const executor = new RunExecutor(options.run, runFork, options.forwardCredentials === true)
    const transport = new JsonRpcTransportHandler(new DefaultRequestHandler(card, new InMemoryTaskStore(), executor))
    const expected = options.bearerToken === undefined ? undefined : digest(Redacted.isRedacted(options.bearerToken) ? Redacted.value(options.bearerToken) : options.bearerToken)
    const cardBody = AgentCard.toJSON(card)

    const app = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const path = new URL(request.url, url).pathname
      if (request.method === "GET" && cardPaths.has(path)) return HttpServerResponse.unsafeJson(cardBody)
      if (request.method !== "POST" || path !== rpcPath) {
        return HttpServerResponse.unsafeJson({ error: `Not found. A2A JSON-RPC is served at POST ${rpcPath}.` }, { status: 404 })
      }
      const token = bearerOf(request.headers.authorization)
      if (expected !== undefined && (token === undefined || !timingSafeEqual(digest(token), expected))) {
        return HttpServerResponse.unsafeJson(
          { error: "Unauthorized: send the server's token as `Authorization: Bearer <token>`." },
          { status: 401, headers: { "www-authenticate": "Bearer" } }
        )
      }
      const body = yield* request.text
      const context = defaultServerCallContextBuilder({
        extensions: Extensions.parseServiceParameter(request.headers["a2a-extensions"]),
        user: token === undefined ? new UnauthenticatedUser() : bearerUser,
        // The token stays out of the SDK's request state (it travels to `run` only when asked).
        headers: { ...request.headers, authorization: undefined },
        ...(request.headers["a2a-version"] !== undefined ? { requestedVersion: request.headers["a2a-version"] } : {})
      })
      if (token !== undefined && options.forwardCredentials === true) context.state.set(tokenKey, Redacted.make(token))
      const answer = yield* Effect.tryPromise(async () => {
        validateVersion(context.requestedVersion, card, "JSONRPC")
        return transport.handle(body, context)
      })
      if (!(Symbol.asyncIterator in answer)) return HttpServerResponse.unsafeJson(answer)
      const iterator = answer[Symbol.asyncIterator]()
      // The first event decides between an SSE stream and a plain JSON-RPC error.
      const first = yield* Effect.tryPromise(() => iterator.next())
      const rest = Stream.repeatEffectOption(
        Effect.tryPromise(() => iterator.next()).pipe(
          Effect.mapError(Option.some),
          Effect.flatMap((next) => (next.done ? Effect.fail(Option.none()) : Effect.succeed(next.value)))
        )
      )
      const events = (first.done ? Stream.empty : Stream.concat(Stream.make(first.value), rest)).pipe(
        Stream.map(formatSSEEvent),
        Stream.catchAll((error) => Stream.make(formatSSEErrorEvent(rpcError(error.error)))),
        // `return()` on a generator parked in `next()` waits for its next event, so do not wait.
        Stream.ensuring(Effect.sync(() => void iterator.return(undefined).catch(() => undefined))),
        Stream.encodeText
      )
      return HttpServerResponse.stream(events, {
        contentType: SSE_HEADERS["Content-Type"],
        headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
      })
    }).pipe(
      Effect.catchTags({
        UnknownException: (error) => Effect.succeed(HttpServerResponse.unsafeJson(rpcError(error.error))),
        RequestError: () =>
          Effect.succeed(HttpServerResponse.unsafeJson({ error: "The request body could not be read." }, { status: 400 }))
      }),
      Effect.withSpan("AgentServer.request")
    )
    yield* server.serve(app)
    return { url, port, cardUrl: `${url}/.well-known/agent-card.json` }
  })

/**
 * `make` as a Layer providing `AgentServer`.
 *
 * @since 0.1.0
 */
export const layer = <R = never>(options: Options<R>): Layer.Layer<AgentServer, ServeError, R> =>
  Layer.scoped(AgentServer, make(options))

const tokenKey = "effect-agent-kernel/callerToken"
const bearerUser: User = { isAuthenticated: true, userName: "bearer" }

const bearerOf = (header: string | undefined): string | undefined => /^Bearer\s+(\S+)\s*$/i.exec(header ?? "")?.[1]

/** Fixed-length digests make the comparison constant-time whatever the token's length. */
const digest = (token: string): Buffer => createHash("sha256").update(token).digest()

const rpcError = (error: unknown) => ({ jsonrpc: "2.0", id: null, error: JsonRpcTransportHandler.mapToJSONRPCError(error) })

// ---------------------------------------------------------------------------------------------
// Running tasks

type RunFork<R> = (effect: Effect.Effect<void, never, R>) => Fiber.RuntimeFiber<void, never>

/**
 * The SDK's `AgentExecutor`: each message runs `run` in a fiber of the server's scope and
 * publishes its events on the task's bus; `cancelTask` interrupts that fiber.
 */
class RunExecutor<R> implements AgentExecutor {
  private readonly running = new Map<string, { fiber: Fiber.RuntimeFiber<void, never>; publisher: Publisher }>()
  /** Tasks whose run ended waiting for input, with their contextId, until answered or cancelled. */
  private readonly parked = new Map<string, string>()

  constructor(readonly run: Run<R>, readonly runFork: RunFork<R>, readonly forwardCredentials: boolean) {}

  execute = async (request: RequestContext, bus: ExecutionEventBus): Promise<void> => {
    const previous = this.running.get(request.taskId)
    // A follow-up message to a task whose earlier run is still parked (waiting for input).
    if (previous !== undefined) await Effect.runPromise(Fiber.interrupt(previous.fiber))
    this.parked.delete(request.taskId)
    const publisher = new Publisher(request, bus)
    const fiber = this.runFork(this.consume(request, publisher))
    this.running.set(request.taskId, { fiber, publisher })
    await Effect.runPromise(Fiber.await(fiber))
    if (this.running.get(request.taskId)?.fiber === fiber) {
      this.running.delete(request.taskId)
      if (publisher.waitingForInput) this.parked.set(request.taskId, request.contextId)
    }
  }

  cancelTask = async (taskId: string, bus: ExecutionEventBus): Promise<void> => {
    const entry = this.running.get(taskId)
    if (entry === undefined) {
      const contextId = this.parked.get(taskId)
      this.parked.delete(taskId)
      return bus.publish(cancelledEvent(taskId, contextId ?? ""))
    }
    // The canceled status is published from inside the fiber, before `execute` returns and the
    // handler closes the bus.
    entry.publisher.cancelRequested = true
    await Effect.runPromise(Fiber.interrupt(entry.fiber))
  }

  private consume(request: RequestContext, publisher: Publisher): Effect.Effect<void, never, R> {
    const prompt = textOf(request.userMessage)
    const token = request.context.state.get(tokenKey)
    const input: RunInput = {
      prompt,
      contextId: request.contextId,
      taskId: request.taskId,
      ...(this.forwardCredentials && Redacted.isRedacted(token)
        ? { authContext: { credentials: { accessToken: token as Redacted.Redacted<string> } } }
        : {})
    }
    const program = prompt.trim() === ""
      ? Effect.sync(() => publisher.status(State.rejected, "The message has no text. Send the prompt as a text part."))
      : this.run(input).pipe(
        Stream.runForEach((event) => Effect.sync(() => publisher.event(event))),
        Effect.matchCauseEffect({
          onSuccess: () => Effect.sync(() => publisher.finish()),
          onFailure: (cause) =>
            Option.match(Cause.failureOption(cause), {
              onSome: (error) => Effect.sync(() => publisher.status(State.failed, error.message)),
              onNone: () =>
                Effect.logError("AgentServer: the run died", cause).pipe(
                  Effect.zipRight(Effect.sync(() => publisher.status(State.failed, "The agent failed unexpectedly.")))
                )
            })
        })
      )
    return Effect.sync(() => publisher.start()).pipe(
      Effect.zipRight(program),
      Effect.onInterrupt(() => Effect.sync(() => publisher.cancelled())),
      Effect.withSpan("AgentServer.task", { attributes: { "a2a.task_id": request.taskId, "a2a.context_id": request.contextId } })
    )
  }
}
