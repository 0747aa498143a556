/**
 * Whatever the AWS SDK throws, as a `ProviderError` whose `reason` and `retryable` flag the
 * retry policy and the router can act on. Messages say what to do and never carry credentials.
 *
 * @internal
 */
import { ProviderError, type ProviderErrorReason } from "../../domain/Errors.js"
import { ResponseTooLarge } from "./bedrockLimits.js"
import { providerId } from "./bedrockRequest.js"
import { responseTooLarge } from "./responseLimits.js"
import * as Redaction from "../../domain/Redaction.js"

interface Classification {
  readonly reason: ProviderErrorReason
  readonly retryable: boolean
  readonly summary: string
  readonly advice: string
}

const credentialsAdvice =
  "Check the AWS credentials (access key, secret key, session token) and that they have not expired."

const unauthorized: Classification = {
  reason: "Unauthorized",
  retryable: false,
  summary: "rejected the AWS credentials",
  advice: credentialsAdvice
}

const serverError = (summary: string): Classification => ({
  reason: "ServerError",
  retryable: true,
  summary,
  advice: "This is usually transient; retry the request."
})

// Keyed by the SDK's error name (the service's `x-amzn-ErrorType` or in-stream exception type).
const byName: Record<string, Classification> = {
  ThrottlingException: {
    reason: "RateLimited",
    retryable: true,
    summary: "throttled the request",
    advice: "Wait and retry, lower the request rate, or ask AWS for a higher quota."
  },
  ServiceQuotaExceededException: {
    reason: "RateLimited",
    retryable: false,
    summary: "reports a service quota exhausted",
    advice: "Request a quota increase or use another model or region."
  },
  ValidationException: {
    reason: "InvalidRequest",
    retryable: false,
    summary: "rejected the request as invalid",
    advice: "Fix the request (messages, tools, inference settings) as the message above says."
  },
  ConflictException: {
    reason: "InvalidRequest",
    retryable: false,
    summary: "rejected the request as conflicting",
    advice: "Fix the request as the message above says."
  },
  AccessDeniedException: {
    reason: "Unauthorized",
    retryable: false,
    summary: "denied access",
    advice:
      "Allow bedrock:InvokeModel and bedrock:InvokeModelWithResponseStream for these credentials and enable access to the model in the Bedrock console for this region."
  },
  UnrecognizedClientException: unauthorized,
  InvalidSignatureException: unauthorized,
  IncompleteSignatureException: unauthorized,
  SignatureDoesNotMatchException: unauthorized,
  InvalidClientTokenId: unauthorized,
  ExpiredTokenException: unauthorized,
  ExpiredToken: unauthorized,
  MissingAuthenticationTokenException: unauthorized,
  CredentialsProviderError: {
    reason: "Unauthorized",
    retryable: false,
    summary: "could not be called because no AWS credentials were found",
    advice:
      "Pass credentials to bedrockProvider, or configure the default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, SSO or an instance role)."
  },
  ResourceNotFoundException: {
    reason: "NotFound",
    retryable: false,
    summary: "does not know the model",
    advice: "Check the model id and that the model is offered in this region."
  },
  ModelTimeoutException: {
    reason: "Timeout",
    retryable: true,
    summary: "timed out while the model processed the request",
    advice: "Retry, or shorten the input."
  },
  TimeoutError: {
    reason: "Timeout",
    retryable: true,
    summary: "did not answer in time",
    advice: "Retry; check the network path to the endpoint if it persists."
  },
  ServiceUnavailableException: serverError("is unavailable"),
  InternalServerException: serverError("failed internally"),
  ModelStreamErrorException: serverError("failed while streaming the answer"),
  ModelNotReadyException: serverError("reports the model is not ready"),
  ModelErrorException: serverError("reports the model failed to process the request")
}

const networkCodes = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "ERR_STREAM_PREMATURE_CLOSE"
])

// What @smithy's event-stream decoder says about frames it cannot trust.
const corruptFrame =
  /checksum|truncated event message|message length does not match|too short to accommodate|unrecognized header type|unrecognizable event type/i

const contextTooLong =
  /too long|too many (input )?tokens|context (length|window)|maximum (context|input)|input length|exceeds? the (maximum|limit)/i

const byStatus = (status: number): Classification | undefined => {
  if (status === 400) return byName.ValidationException
  if (status === 401 || status === 403) return unauthorized
  if (status === 404) return byName.ResourceNotFoundException
  if (status === 408 || status === 504) return byName.TimeoutError
  if (status === 429) return byName.ThrottlingException
  if (status >= 500) return serverError(`failed with HTTP ${status}`)
  return undefined
}

interface SdkErrorLike {
  readonly name?: unknown
  readonly message?: unknown
  readonly code?: unknown
  readonly $metadata?: { readonly httpStatusCode?: unknown }
  readonly $response?: { readonly headers?: Record<string, unknown> }
}

const field = (value: unknown): string | undefined => typeof value === "string" && value !== "" ? value : undefined

/**
 * Removes credentials from text that may reach an error: the known secret values in every form,
 * and what is shaped like an AWS access key id, signature or SigV4 credential scope (which AWS
 * echoes back).
 *
 * @internal
 */
export const scrubCredentials = (text: string, secrets: ReadonlyArray<string>): string =>
  Redaction.scrub(text, secrets).replace(accessKeyId, Redaction.REDACTED)

// Every access key id prefix AWS uses, beyond the AKIA/ASIA the shared rules know.
const accessKeyId = /\b(AKID|AIDA|AROA|AGPA|ANPA|ANVA|AIPA)[A-Z0-9]{4,}\b/g

const retryAfterMs = (headers: Record<string, unknown> | undefined): number | undefined => {
  if (headers === undefined) return undefined
  const header = (name: string) => {
    const key = Object.keys(headers).find((candidate) => candidate.toLowerCase() === name)
    return key === undefined ? undefined : field(headers[key])
  }
  const ms = Number(header("retry-after-ms"))
  if (header("retry-after-ms") !== undefined && Number.isFinite(ms) && ms >= 0) return ms
  const seconds = Number(header("retry-after"))
  if (header("retry-after") !== undefined && Number.isFinite(seconds) && seconds >= 0) return seconds * 1000
  return undefined
}

const classify = (name: string, message: string, code: string | undefined, status: number | undefined): Classification => {
  if (code !== undefined && networkCodes.has(code)) {
    return {
      reason: "Network",
      retryable: true,
      summary: "could not be reached or dropped the connection",
      advice: "Retry; check the endpoint and the network if it persists."
    }
  }
  const named = Object.hasOwn(byName, name) ? byName[name] : undefined
  if (named !== undefined) {
    if (named.reason === "InvalidRequest" && contextTooLong.test(message)) {
      return {
        reason: "ContextTooLong",
        retryable: false,
        summary: "rejected the input as too long for the model",
        advice: "Shorten the conversation (drop or summarise old messages) or use a model with a larger context window."
      }
    }
    return named
  }
  if (corruptFrame.test(message)) {
    return {
      reason: "InvalidResponse",
      retryable: false,
      summary: "sent an event-stream frame that failed verification",
      advice: "The response was corrupted in transit or by a proxy; retry the request, and check proxies between here and the endpoint."
    }
  }
  if (/region is missing/i.test(message)) {
    return {
      reason: "InvalidRequest",
      retryable: false,
      summary: "could not be called because no AWS region is configured",
      advice: "Pass bedrockProvider({ region }) or set AWS_REGION."
    }
  }
  const fromStatus = status === undefined ? undefined : byStatus(status)
  if (fromStatus !== undefined) return fromStatus
  return {
    reason: "InvalidResponse",
    retryable: false,
    summary: "answered in a way the client could not understand",
    advice: "Check that the endpoint is Bedrock Runtime; retry if it was a one-off."
  }
}

/**
 * Maps an error thrown by the Bedrock client (HTTP errors, in-stream exceptions, network and
 * event-stream decoding failures) to a `ProviderError`. `secrets` are credential values to keep
 * out of the message; access key ids are removed whether listed or not.
 *
 * @internal
 */
export const toProviderError = (error: unknown, secrets: ReadonlyArray<string>): ProviderError => {
  if (error instanceof ProviderError) return error
  if (error instanceof ResponseTooLarge) return responseTooLarge(providerId, error.what, error.limit, error.bytes)
  const sdk: SdkErrorLike = typeof error === "object" && error !== null ? error as SdkErrorLike : {}
  const name = field(sdk.name) ?? "Error"
  const rawMessage = field(sdk.message) ?? (typeof error === "string" ? error : "no message")
  const status = typeof sdk.$metadata?.httpStatusCode === "number" ? sdk.$metadata.httpStatusCode : undefined
  const classification = classify(name, rawMessage, field(sdk.code), status)
  const detail = scrubCredentials(rawMessage.length > 500 ? `${rawMessage.slice(0, 500)}…` : rawMessage, secrets)
    // The sentence that follows brings its own full stop.
    .replace(/[.\s]+$/, "")
  const retryAfter = classification.reason === "RateLimited" ? retryAfterMs(sdk.$response?.headers) : undefined
  return new ProviderError({
    reason: classification.reason,
    providerId,
    message: `Bedrock ${classification.summary} (${name}${status !== undefined ? `, HTTP ${status}` : ""}): ${detail}. ${classification.advice}`,
    retryable: classification.retryable,
    ...(status !== undefined ? { status } : {}),
    ...(retryAfter !== undefined ? { retryAfterMs: retryAfter } : {})
  })
}
