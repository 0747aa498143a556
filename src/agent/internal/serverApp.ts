/**
 * The HTTP side of a served agent, in the order a request meets it: the `Host`/`Origin` guard,
 * the agent card, the bearer token, the body limit, then the SDK's JSON-RPC transport. A request
 * that waits for its run (a stream, or a blocking send) carries a `ClientConnection`, so its run
 * is cancelled when the client leaves; a non-blocking send's run goes on without it.
 */
import { type AgentCard, Extensions } from "@a2a-js/sdk"
import {
  defaultServerCallContextBuilder,
  type JsonRpcTransportHandler,
  UnauthenticatedUser,
  validateVersion
} from "@a2a-js/sdk/server"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { bearerOf, bearerUser, makeTokenCheck } from "./serverAuth.js"
import { readBody } from "./serverBody.js"
import { cardPaths, rpcPath } from "./serverCard.js"
import { ClientConnection, connectionKey, type RunExecutor, type RunFork, tokenKey } from "./serverExecutor.js"
import type { Guard } from "./serverGuard.js"
import { closeIterator, drainIterator, type EventIterator, rpcError, sseResponse } from "./serverSse.js"

export interface AppOptions<R> {
  readonly url: string
  readonly guard: Guard
  readonly card: AgentCard
  readonly cardBody: unknown
  readonly transport: JsonRpcTransportHandler
  readonly executor: RunExecutor<R>
  readonly runFork: RunFork<R>
  readonly bearerToken: Redacted.Redacted<string> | undefined
  readonly forwardCredentials: boolean
  readonly maxBodyBytes: number
}

export const makeApp = <R>(options: AppOptions<R>) => {
  const tokenAccepted = makeTokenCheck(options.bearerToken)
  return Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const verdict = options.guard(request.headers.host, request.headers.origin)
    if (verdict._tag === "Refused") return HttpServerResponse.unsafeJson({ error: verdict.message }, { status: 403 })
    const cors = verdict.corsHeaders
    const path = new URL(request.url, options.url).pathname
    if (request.method === "OPTIONS" && Object.keys(cors).length > 0) {
      return HttpServerResponse.empty({ status: 204, headers: { ...cors, ...preflightHeaders } })
    }
    if (request.method === "GET" && cardPaths.has(path)) return HttpServerResponse.unsafeJson(options.cardBody, { headers: cors })
    if (request.method !== "POST" || path !== rpcPath) {
      return HttpServerResponse.unsafeJson({ error: `Not found. A2A JSON-RPC is served at POST ${rpcPath}.` }, { status: 404, headers: cors })
    }
    const token = bearerOf(request.headers.authorization)
    if (!tokenAccepted(token)) {
      return HttpServerResponse.unsafeJson(
        { error: "Unauthorized: send the server's token as `Authorization: Bearer <token>`." },
        { status: 401, headers: { ...cors, "www-authenticate": "Bearer" } }
      )
    }
    return HttpServerResponse.setHeaders(yield* handleRpc(options, request, token), cors)
  }).pipe(
    Effect.catchTags({
      BodyTooLarge: ({ limit }) =>
        Effect.succeed(HttpServerResponse.unsafeJson({
          jsonrpc: "2.0",
          id: null,
          error: {
            code: -32600,
            message: `Request body too large: this agent accepts at most ${limit} bytes (AgentServer's maxBodyBytes). ` +
              "Send a shorter message, or start the server with a larger maxBodyBytes."
          }
        }, { status: 413, headers: { connection: "close" } })),
      UnknownException: (error) => Effect.succeed(HttpServerResponse.unsafeJson(rpcError(error.error))),
      RequestError: () =>
        Effect.succeed(HttpServerResponse.unsafeJson({ error: "The request body could not be read." }, { status: 400 }))
    }),
    // The platform runs handlers uninterruptibly; this one must stop (and cancel the run it
    // waits for) when its client disconnects.
    Effect.interruptible,
    Effect.withSpan("AgentServer.request")
  )
}

const handleRpc = <R>(options: AppOptions<R>, request: HttpServerRequest.HttpServerRequest, token: string | undefined) =>
  Effect.gen(function*() {
    const body = yield* readBody(request, options.maxBodyBytes)
    const rpc = parseRpc(body)
    const context = defaultServerCallContextBuilder({
      extensions: Extensions.parseServiceParameter(request.headers["a2a-extensions"]),
      user: token === undefined ? new UnauthenticatedUser() : bearerUser,
      // The token stays out of the SDK's request state (it travels to `run` only when asked).
      headers: { ...request.headers, authorization: undefined },
      ...(request.headers["a2a-version"] !== undefined ? { requestedVersion: request.headers["a2a-version"] } : {})
    })
    if (token !== undefined && options.forwardCredentials) context.state.set(tokenKey, Redacted.make(token))
    const connection = waitsForRun(rpc) ? new ClientConnection() : undefined
    if (connection !== undefined) context.state.set(connectionKey, connection)
    const answer = yield* Effect.tryPromise(async () => {
      validateVersion(context.requestedVersion, options.card, "JSONRPC")
      return options.transport.handle(rpc ?? body, context)
    }).pipe(Effect.onInterrupt(() => clientGone(options, connection, undefined)))
    if (!(Symbol.asyncIterator in answer)) return HttpServerResponse.unsafeJson(answer)
    const iterator = answer[Symbol.asyncIterator]()
    return yield* sseResponse(iterator, clientGone(options, connection, iterator))
  })

/**
 * What happens when a request's client leaves: the runs it waited for are cancelled in the
 * background and the SDK's stream read to its end (it records their cancellation as it goes);
 * a request that waited for no run (a task subscription) only lets go of the stream.
 */
const clientGone = <R>(
  options: AppOptions<R>,
  connection: ClientConnection | undefined,
  iterator: EventIterator | undefined
): Effect.Effect<void> => {
  if (connection === undefined) return iterator === undefined ? Effect.void : closeIterator(iterator)
  const drain = iterator === undefined ? Effect.void : drainIterator(iterator)
  return Effect.sync(() => void options.runFork(Effect.zipRight(options.executor.abandon(connection), drain)))
}

type RpcRequest = Readonly<Record<string, unknown>>

/** The body as a JSON-RPC object, or `undefined` for the transport to answer with a parse error. */
const parseRpc = (body: string): RpcRequest | undefined => {
  try {
    const parsed: unknown = JSON.parse(body)
    return typeof parsed === "object" && parsed !== null ? parsed as RpcRequest : undefined
  } catch {
    return undefined
  }
}

/** A streamed send, or a send that answers only when the run ends (the default). */
const waitsForRun = (rpc: RpcRequest | undefined): boolean => {
  if (rpc?.method === "SendStreamingMessage") return true
  if (rpc?.method !== "SendMessage") return false
  const params = rpc.params as { readonly configuration?: Readonly<Record<string, unknown>> } | undefined
  const configuration = params?.configuration
  // The SDK's reading of the flag, both spellings.
  return !(configuration?.returnImmediately ?? configuration?.return_immediately)
}

const preflightHeaders = {
  "access-control-allow-methods": "GET, POST",
  "access-control-allow-headers": "authorization, content-type, a2a-version, a2a-extensions",
  "access-control-max-age": "600"
}
