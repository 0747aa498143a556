/**
 * Talking to A2A agents over HTTP: the SDK's client with the call's headers on every request,
 * fetching and normalizing agent cards, and what a failure of the SDK or `fetch` is reported as
 * (never with a header's value in it).
 *
 * @internal
 */
import { AgentCard } from "@a2a-js/sdk"
import {
  ClientFactory,
  ClientFactoryOptions,
  DefaultAgentCardResolver,
  JsonRpcTransportFactory,
  RestTransportFactory
} from "@a2a-js/sdk/client"
import { A2AError } from "@a2a-js/sdk/errors"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type { ToolErrorReason } from "../../domain/Errors.js"
import type { AuthContext } from "../../domain/ExecutionContext.js"
import * as Redaction from "../../domain/Redaction.js"
import type { HeadersOption } from "../AgentTools.js"

const cardTimeout = Duration.seconds(10)

/** An HTTP answer refusing our credentials; raised inside `fetch` so the status is not lost. */
class RefusedByServer extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`)
  }
}

const connectionCodes = new Set(
  ["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EHOSTUNREACH", "ETIMEDOUT", "EAI_AGAIN", "UND_ERR_SOCKET", "UND_ERR_CONNECT_TIMEOUT"]
)

/** The first `code` along an error's `cause` chain (`fetch` puts the socket's there). */
const codeOf = (error: unknown, depth = 0): unknown =>
  error instanceof Object && depth < 5 ? ((error as { code?: unknown }).code ?? codeOf((error as Error).cause, depth + 1)) : undefined

/** Maps what the SDK or `fetch` threw; `peer` names the other side of the call. */
export const classify = (error: unknown, peer: string): readonly [ToolErrorReason, string] => {
  if (error instanceof RefusedByServer) {
    return ["Unauthorized", `The ${peer} refused the credentials (HTTP ${error.status}). Check the token or headers configured for it.`]
  }
  if (error instanceof A2AError) return ["ExecutionFailed", `The ${peer} answered with an error: ${error.message}`]
  const code = codeOf(error)
  if (typeof code === "string" && connectionCodes.has(code)) {
    return ["Transport", `Cannot reach the ${peer} (${code}). Check that the agent is running and that the URL is right.`]
  }
  return ["Transport", `Talking to the ${peer} failed: ${messageOf(error)}`]
}

export const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** Never lets a header value (a token) reach an error or a log line. */
export const scrub = (message: string, secrets: ReadonlyArray<string>): string => Redaction.scrub(message, secrets)

export const resolveHeaders = (option: HeadersOption | undefined, authContext: AuthContext | undefined) =>
  Effect.gen(function*() {
    const token = authContext?.credentials?.accessToken
    const headers: Record<string, string> = token !== undefined ? { authorization: `Bearer ${Redacted.value(token)}` } : {}
    const extra = typeof option === "function" ? option(authContext) : option ?? {}
    for (const [key, value] of Object.entries(Effect.isEffect(extra) ? yield* extra : extra)) {
      headers[key.toLowerCase()] = Redacted.isRedacted(value) ? Redacted.value(value) : value
    }
    return headers
  })

/** A `fetch` that adds the call's headers and turns 401/403 into `RefusedByServer`. */
const fetchWith = (headers: Record<string, string>, signal?: AbortSignal): typeof fetch => async (input, init) => {
  const merged = new Headers(init?.headers)
  for (const [key, value] of Object.entries(headers)) merged.set(key, value)
  const response = await fetch(input, { ...init, headers: merged, signal: init?.signal ?? signal ?? null })
  if (response.status === 401 || response.status === 403) {
    await response.body?.cancel()
    throw new RefusedByServer(response.status)
  }
  return response
}

export const clientFactory = (headers: Record<string, string>): ClientFactory => {
  const fetchImpl = fetchWith(headers)
  // v0.3 agents are still common, so their cards and transports are accepted too.
  return new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
    cardResolver: cardResolver,
    transports: [
      new JsonRpcTransportFactory({ fetchImpl, legacyCompat: { enabled: true } }),
      new RestTransportFactory({ fetchImpl, legacyCompat: { enabled: true } })
    ]
  }))
}
const cardResolver = new DefaultAgentCardResolver({ legacyCompat: { enabled: true } })

/** The card URLs to try: the given URL when it names a JSON file, else the two well-known paths. */
const cardUrls = (url: string): ReadonlyArray<string> => {
  const parsed = new URL(url)
  if (parsed.pathname.endsWith(".json")) return [parsed.href]
  const base = parsed.href.endsWith("/") ? parsed.href : `${parsed.href}/`
  return [new URL(".well-known/agent-card.json", base).href, new URL(".well-known/agent.json", base).href]
}

type CardFailure = readonly [ToolErrorReason, string]

export const fetchCard = (url: string, option: HeadersOption | undefined): Effect.Effect<AgentCard, CardFailure> =>
  Effect.gen(function*() {
    const urls = yield* Effect.try({
      try: () => cardUrls(url),
      catch: (): CardFailure => ["InvalidArguments", `"${url}" is not a valid URL for an A2A agent.`]
    })
    const headers = yield* resolveHeaders(option, undefined)
    const failed = (cardUrl: string) => (error: unknown): CardFailure => {
      const [reason, message] = classify(error, `A2A agent card at ${cardUrl}`)
      return [reason, scrub(message, Redaction.secretsOfHeaders(headers))]
    }
    const misses: Array<string> = []
    for (const cardUrl of urls) {
      const response = yield* Effect.tryPromise({
        try: (signal) => fetchWith(headers, signal)(cardUrl, { headers: { "A2A-Version": "1.0" } }),
        catch: failed(cardUrl)
      }).pipe(Effect.timeoutFail({
        duration: cardTimeout,
        onTimeout: () => failed(cardUrl)(new Error(`no answer within ${Duration.format(cardTimeout)}`))
      }))
      if (!response.ok) {
        misses.push(`${cardUrl} answered HTTP ${response.status}`)
        continue
      }
      const raw = yield* Effect.tryPromise({ try: () => response.json(), catch: failed(cardUrl) })
      return yield* Effect.try({ try: () => normalize(cardResolver.normalizeAgentCard(raw)), catch: failed(cardUrl) })
    }
    return yield* Effect.fail<CardFailure>(["Transport", `No A2A agent card found: ${misses.join("; ")}. Check the agent's URL.`])
  }).pipe(Effect.withSpan("AgentToolProvider.fetchCard", { attributes: { "agent.url": url } }))

/** Fills the fields a card on the wire may omit, so the rest of the code can rely on them. */
const normalize = (card: AgentCard): AgentCard => {
  if (typeof card?.name !== "string") throw new Error("the document is not an agent card (it has no name)")
  return { ...AgentCard.fromJSON({}), ...card, skills: card.skills ?? [], supportedInterfaces: card.supportedInterfaces ?? [] }
}
