/**
 * How OpenAI-compatible failures become `ProviderError`s: HTTP statuses, in-band stream errors
 * and transport failures, each with a message that says what to do, a redacted body excerpt,
 * the server's `Retry-After` and the response headers worth keeping.
 */
import type * as Headers from "@effect/platform/Headers"
import { ProviderError, type ProviderErrorReason } from "../../domain/Errors.js"
import * as Redaction from "../../domain/Redaction.js"

/** Response headers kept as metadata: LiteLLM's, the rate-limit quota and the request id. */
export const pickMetadata = (headers: Headers.Headers, secret: string | undefined): Record<string, string> | undefined => {
  let metadata: Record<string, string> | undefined
  for (const name in headers) {
    if (name.startsWith("x-litellm-") || name.startsWith("x-ratelimit-") || name === "x-request-id") {
      metadata ??= {}
      metadata[name] = redact(String(headers[name]), secret)
    }
  }
  return metadata
}

/**
 * The server's requested delay in milliseconds: `retry-after-ms` first, then `retry-after` as
 * seconds or an HTTP date (relative to `now`).
 */
export const retryAfterMs = (headers: Headers.Headers, now: number): number | undefined => {
  const ms = headers["retry-after-ms"]
  if (ms !== undefined && ms.trim() !== "" && Number.isFinite(Number(ms))) return Math.max(0, Number(ms))
  const value = headers["retry-after"]
  if (value === undefined || value.trim() === "") return undefined
  if (Number.isFinite(Number(value))) return Math.max(0, Number(value) * 1000)
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

const excerptLimit = 300

/** Removes anything that looks like a credential, then shortens the text for an error message. */
export const excerpt = (body: string, secret: string | undefined): string => {
  const cleaned = redact(body, secret).replace(/\s+/g, " ").trim()
  if (cleaned === "") return "(empty body)"
  return cleaned.length > excerptLimit ? `${cleaned.slice(0, excerptLimit)}…` : cleaned
}

const redact = (text: string, secret: string | undefined): string => Redaction.scrub(text, [secret])

const contextTooLong = /context.length|context_length|maximum context|too many tokens|prompt is too long/i

interface Failure {
  readonly reason: ProviderErrorReason
  readonly retryable: boolean
  readonly advice: string
}

const statusFailure = (status: number, body: string, providerId: string): Failure => {
  if (status === 400 || status === 413 || status === 422) {
    return contextTooLong.test(body)
      ? { reason: "ContextTooLong", retryable: false, advice: "Shorten the conversation or use a model with a larger context." }
      : { reason: "InvalidRequest", retryable: false, advice: "The server rejected the request; check the model name and options." }
  }
  if (status === 401 || status === 403) {
    return {
      reason: "Unauthorized",
      retryable: false,
      advice: `Check the API key: run scripts/pair.ts ${providerId}.`
    }
  }
  if (status === 404) {
    return { reason: "NotFound", retryable: false, advice: "Check the base URL and the model name." }
  }
  if (status === 408 || status === 504) {
    return { reason: "Timeout", retryable: true, advice: "The server timed out; try again." }
  }
  if (status === 429) {
    return { reason: "RateLimited", retryable: true, advice: "Slow down or configure a rate limit for this provider." }
  }
  if (status >= 500) return { reason: "ServerError", retryable: true, advice: "The server failed; try again later." }
  return { reason: "InvalidResponse", retryable: false, advice: "The server answered with an unexpected status." }
}

/** A non-2xx response as a `ProviderError`. */
export const fromStatus = (options: {
  readonly providerId: string
  readonly status: number
  readonly body: string
  readonly headers: Headers.Headers
  readonly now: number
  readonly secret: string | undefined
}): ProviderError => {
  const failure = statusFailure(options.status, options.body, options.providerId)
  const delay = failure.reason === "RateLimited" || failure.reason === "ServerError"
    ? retryAfterMs(options.headers, options.now)
    : undefined
  const metadata = pickMetadata(options.headers, options.secret)
  return new ProviderError({
    reason: failure.reason,
    providerId: options.providerId,
    retryable: failure.retryable,
    status: options.status,
    message: `Provider "${options.providerId}" answered HTTP ${options.status} (${failure.reason}): ` +
      `${excerpt(options.body, options.secret)}. ${failure.advice}`,
    ...(delay !== undefined ? { retryAfterMs: Math.ceil(delay) } : {}),
    ...(metadata !== undefined ? { metadata } : {})
  })
}

const codeReasons: Record<string, Failure> = {
  rate_limit_exceeded: { reason: "RateLimited", retryable: true, advice: "Slow down and try again." },
  rate_limit_error: { reason: "RateLimited", retryable: true, advice: "Slow down and try again." },
  context_length_exceeded: { reason: "ContextTooLong", retryable: false, advice: "Shorten the conversation." },
  invalid_api_key: { reason: "Unauthorized", retryable: false, advice: "Check the API key." },
  authentication_error: { reason: "Unauthorized", retryable: false, advice: "Check the API key." },
  invalid_request_error: { reason: "InvalidRequest", retryable: false, advice: "Check the request options." },
  content_filter: { reason: "ContentFiltered", retryable: false, advice: "The content was filtered." },
  content_policy_violation: { reason: "ContentFiltered", retryable: false, advice: "The content was filtered." },
  timeout: { reason: "Timeout", retryable: true, advice: "Try again." },
  overloaded_error: { reason: "ServerError", retryable: true, advice: "The server is overloaded; try again later." }
}

/** An in-band `{"error": …}` event as a `ProviderError`, mapped by its `code`, `type` or status. */
export const fromInBand = (
  providerId: string,
  payload: unknown,
  metadata: Record<string, string> | undefined,
  secret: string | undefined
): ProviderError => {
  const error = typeof payload === "object" && payload !== null ? payload as Record<string, unknown> : {}
  const code = error.code !== undefined && error.code !== null ? String(error.code) : undefined
  const type = typeof error.type === "string" ? error.type : undefined
  const text = typeof error.message === "string" ? error.message : typeof payload === "string" ? payload : JSON.stringify(payload)
  const status = code !== undefined && /^\d{3}$/.test(code) ? Number(code) : undefined
  const failure = (code !== undefined ? codeReasons[code] : undefined) ??
    (type !== undefined ? codeReasons[type] : undefined) ??
    (status !== undefined ? statusFailure(status, text, providerId) : undefined) ??
    (contextTooLong.test(text) ? codeReasons.context_length_exceeded! : undefined) ??
    { reason: "ServerError", retryable: true, advice: "The server reported an error mid-answer; try again." }
  return new ProviderError({
    reason: failure.reason,
    providerId,
    retryable: failure.retryable,
    message: `Provider "${providerId}" reported an error in its stream (${code ?? type ?? "no code"}): ` +
      `${excerpt(text, secret)}. ${failure.advice}`,
    ...(status !== undefined ? { status } : {}),
    ...(metadata !== undefined ? { metadata } : {})
  })
}

/** A failed connection, write or read: retryable, the provider may come back. */
export const network = (providerId: string, baseUrl: string, cause: unknown, phase: string): ProviderError =>
  new ProviderError({
    reason: "Network",
    providerId,
    retryable: true,
    message: `Provider "${providerId}" at ${baseUrl}: the connection failed ${phase} (${describeCause(cause)}). ` +
      `Check that the server is running and reachable.`
  })

/** The server sent something that is not the OpenAI wire format. */
export const invalidResponse = (providerId: string, what: string, secret?: string): ProviderError =>
  new ProviderError({
    reason: "InvalidResponse",
    providerId,
    retryable: false,
    message: `Provider "${providerId}" sent an invalid response: ${excerpt(what, secret)}. ` +
      `Check that the base URL points at an OpenAI-compatible API.`
  })

const describeCause = (cause: unknown): string => {
  let current: unknown = cause
  const parts: Array<string> = []
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    if (current instanceof Error) {
      const code = (current as { code?: unknown }).code
      parts.push(typeof code === "string" ? `${current.message} [${code}]` : current.message)
      current = (current as { cause?: unknown }).cause
    } else {
      parts.push(String(current))
      break
    }
  }
  return parts.filter((part) => part !== "").join(": ") || "unknown error"
}

/** The body ended before `[DONE]` and without a finish reason: the answer is incomplete. */
export const truncated = (providerId: string): ProviderError =>
  new ProviderError({
    reason: "Truncated",
    providerId,
    retryable: true,
    message: `Provider "${providerId}" ended its stream before [DONE] and without a finish reason; ` +
      `the answer is incomplete. Try again.`
  })
