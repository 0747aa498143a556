import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Errors from "../../src/domain/Errors.js"

const providerError = new Errors.ProviderError({
  reason: "RateLimited",
  providerId: "openai",
  message: "Rate limited by openai; retry after 2 s.",
  retryable: true,
  status: 429,
  retryAfterMs: 2000,
  metadata: { "x-request-id": "req-1" }
})
const toolError = new Errors.ToolError({
  reason: "InvalidArguments",
  toolName: "search",
  toolCallId: "call-1",
  message: "query must be a string",
  details: { path: ["query"], expected: "string", got: 3 }
})

/** One instance of every error class (optional fields filled), plus minimal variants. */
const samples = [
  providerError,
  new Errors.ProviderError({ reason: "Network", providerId: "ollama", message: "connection refused", retryable: true }),
  toolError,
  new Errors.SecretsError({ reason: "WrongKey", message: "wrong passphrase", path: "/tmp/s.enc", key: "provider.x.apiKey" }),
  new Errors.ConfigError({ reason: "InvalidValue", message: "expected an array", key: "plugins.enabled", path: "/c.json" }),
  new Errors.RoutingError({
    reason: "NoProviderAvailable",
    message: "no provider could serve tier complex",
    tier: "complex",
    attempts: [{ provider: "openai", reason: "Unauthorized" }, { provider: "groq", reason: "cooling down" }]
  }),
  new Errors.PluginError({ reason: "NotFound", pluginId: "@acme/plugin", message: "no such module" }),
  new Errors.AgentError({ reason: "ModelFailed", message: "the model failed", contextId: "c", taskId: "t", cause: providerError }),
  new Errors.AgentError({ reason: "RepeatedToolFailure", message: "gave up", cause: toolError }),
  new Errors.AgentError({ reason: "InvalidInput", message: "empty input" }),
  new Errors.StorageError({ reason: "Unreachable", database: "postgres://kernel@127.0.0.1:5432/kernel", message: "connection refused" })
] as const

const toJson = (error: Errors.KernelError): unknown => JSON.parse(JSON.stringify(Schema.encodeSync(Errors.KernelError)(error)))

describe("Errors", () => {
  it("has a sample for every member of KernelError, so a new error cannot go untested", () => {
    const sampled = new Set(samples.map((error) => error.constructor))
    expect(Errors.KernelError.members.filter((member) => !sampled.has(member as never))).toEqual([])
  })

  it.each(samples.map((error) => [`${error._tag}(${error.reason})`, error] as const))(
    "%s encodes to JSON and decodes back equal, as the same class",
    (_, error) => {
      const json = toJson(error)
      expect(json).toMatchObject({ _tag: error._tag, reason: error.reason, message: error.message })
      const decoded = Schema.decodeUnknownSync(Errors.KernelError)(json)
      expect(decoded).toBeInstanceOf(error.constructor)
      expect(decoded).toBeInstanceOf(Error)
      expect(decoded).toStrictEqual(error)
      // Errors compare loosely in vitest (a nested `cause` is not compared field by field), so
      // the encoded forms must match too.
      expect(Schema.encodeSync(Errors.KernelError)(decoded)).toStrictEqual(Schema.encodeSync(Errors.KernelError)(error))
      expect(decoded.message).toBe(error.message)
    }
  )

  it("decodes an AgentError's cause back into its own error class", () => {
    const decoded = Schema.decodeUnknownSync(Errors.KernelError)(toJson(samples[7]))
    const cause = decoded._tag === "AgentError" ? decoded.cause : undefined
    expect(cause).toBeInstanceOf(Errors.ProviderError)
    expect({ ...cause }).toStrictEqual({ ...providerError })
  })

  it("rejects a reason that is not in the error's list", () => {
    const json = { ...(toJson(providerError) as object), reason: "Exploded" }
    expect(Either.isLeft(Schema.decodeUnknownEither(Errors.KernelError)(json))).toBe(true)
  })

  it.effect("are yieldable, failing with themselves in the typed error channel", () =>
    Effect.gen(function*() {
      const failed = yield* Effect.flip(Effect.gen(function*() {
        return yield* toolError
      }))
      expect(failed).toBe(toolError)
    }))

  it("offer exactly the reasons the design names", () => {
    expect(Errors.ProviderErrorReason.literals).toEqual([
      "RateLimited",
      "Unauthorized",
      "NotFound",
      "InvalidRequest",
      "ContextTooLong",
      "ContentFiltered",
      "ServerError",
      "Timeout",
      "Network",
      "InvalidResponse",
      "Truncated"
    ])
    expect(Errors.ToolErrorReason.literals).toEqual([
      "NotFound",
      "InvalidArguments",
      "ExecutionFailed",
      "Timeout",
      "Unauthorized",
      "Transport",
      "InputRejected"
    ])
    expect(Errors.SecretsErrorReason.literals).toEqual(expect.arrayContaining(["WrongKey", "Corrupt", "ReadOnly"]))
  })
})
