/**
 * One OpenAI-compatible request on the wire: the completions request (built again only when the
 * key changes), sent through the platform's client with the span it makes only for a recording
 * tracer, and a non-2xx answer turned into a `ProviderError` from a bounded read of its body.
 * Health is learned from every exchange.
 */
import type * as Headers from "@effect/platform/Headers"
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { ProviderError } from "../../domain/Errors.js"
import { recording } from "../../internal/tracing.js"
import type { OpenAiCompatibleConfig } from "../OpenAiCompatible.js"
import { readBounded } from "./openaiBody.js"
import * as Errors from "./openaiErrors.js"
import type { Health } from "./openaiHealth.js"
import type { Limits } from "./responseLimits.js"

/** A sent request's answer, status checked, before its body is read. */
export interface Sent {
  readonly response: HttpClientResponse.HttpClientResponse
  readonly secret: string | undefined
  readonly metadata: Record<string, string> | undefined
  readonly whole: boolean
}

/** What an exchange needs: the client, the provider's settings, its key and its health. */
export interface ExchangeOptions {
  readonly client: HttpClient.HttpClient
  readonly config: OpenAiCompatibleConfig
  readonly root: string
  readonly limits: Limits
  readonly resolveKey: Effect.Effect<Option.Option<Redacted.Redacted<string>>, ProviderError>
  readonly health: Health
}

/** Adds the configured headers and the key to a request. */
export const authorize = (
  config: OpenAiCompatibleConfig,
  request: HttpClientRequest.HttpClientRequest,
  key: Option.Option<Redacted.Redacted<string>>
) => {
  const withHeaders = config.headers === undefined ? request : HttpClientRequest.setHeaders(request, config.headers)
  return Option.isSome(key) ? HttpClientRequest.bearerToken(withHeaders, key.value) : withHeaders
}

/**
 * Sends a completions request body, or fails with the error that kept a request from being built
 * (see `requestBody`); see the module doc.
 */
export const makeSend = (
  options: ExchangeOptions
): (body: Record<string, unknown> | ProviderError) => Effect.Effect<Sent, ProviderError> => {
  const { client, config, health, limits, resolveKey, root } = options
  const providerId = config.id
  const completionsUrl = `${root}/v1/chat/completions`

  // The completions request without its body, built again only when the key changes.
  let postFor: string | undefined
  let post: HttpClientRequest.HttpClientRequest | undefined
  const completionsRequest = (key: Option.Option<Redacted.Redacted<string>>, secret: string | undefined) => {
    if (post === undefined || postFor !== secret) {
      post = authorize(config, HttpClientRequest.post(completionsUrl), key)
      postFor = secret
    }
    return post
  }

  // An error's body is read only as far as its excerpt could need, however much is sent.
  const failed = (response: HttpClientResponse.HttpClientResponse, headers: Headers.Headers, secret: string | undefined) =>
    Effect.gen(function*() {
      const body = yield* Effect.either(readBounded(response, limits.maxErrorBodyBytes, identity))
      const error = Errors.fromStatus({
        providerId,
        status: response.status,
        body: body._tag === "Right" ? body.right.text : "",
        headers,
        now: yield* Clock.currentTimeMillis,
        secret
      })
      if (error.reason === "Unauthorized") yield* health.learn(false)
      return yield* Effect.fail(error)
    })

  // The platform's client makes a span per request (an attribute for every header, random
  // ids, trace headers added to the request): measured at 40-100 µs of CPU a request. With
  // Effect's built-in tracer no span is ever exported, so that span and its trace headers are
  // left out; with a real tracer (OpenTelemetry, say) they are kept.
  const execute = (request: HttpClientRequest.HttpClientRequest) =>
    Effect.withFiberRuntime<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError>((fiber) =>
      !recording(fiber)
        ? Effect.withTracerEnabled(client.execute(request), false)
        : client.execute(request)
    )

  // Sends the request and turns a non-2xx answer into a ProviderError; health is learned here.
  // Written without `Effect.gen`: this runs once per model call.
  return (body: Record<string, unknown> | ProviderError): Effect.Effect<Sent, ProviderError> =>
    body instanceof ProviderError ? Effect.fail(body) : Effect.flatMap(resolveKey, (key) => {
      const secret = Option.isSome(key) ? Redacted.value(key.value) : undefined
      const request = HttpClientRequest.bodyUnsafeJson(completionsRequest(key, secret), body)
      return Effect.matchEffect(execute(request), {
        onFailure: (error) =>
          Effect.zipRight(
            health.learn(false),
            Effect.fail(Errors.network(providerId, root, error.cause ?? error, "before an answer arrived"))
          ),
        onSuccess: (response): Effect.Effect<Sent, ProviderError> => {
          // The platform builds the headers anew on every read.
          const headers = response.headers
          if (response.status < 200 || response.status >= 300) return failed(response, headers, secret)
          return Effect.as(health.learn(true), {
            response,
            secret,
            metadata: Errors.pickMetadata(headers, secret),
            // Asked for whole (`stream: false`), or answered whole: some servers ignore `stream: true`.
            whole: body.stream !== true || (headers["content-type"] ?? "").includes("application/json")
          })
        }
      })
    })
}
