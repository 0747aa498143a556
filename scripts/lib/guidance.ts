/**
 * What to tell a user when no model provider could serve their request: for each provider the
 * router tried, why it failed and the one thing to do about it (pair it, set its key's
 * environment variable, start its server, fix its base URL).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import type { ConfigManager } from "../../src/config/ConfigManager.js"
import type { AgentError, ProviderError, RoutingError } from "../../src/domain/Errors.js"
import type { RouteAttempt } from "../../src/domain/Message.js"
import { providerEnvVar, type SecretsManager } from "../../src/secrets/SecretsManager.js"

/** The error of a run that no provider could serve, or `undefined` for any other failure. */
export const unservedCause = (error: AgentError): RoutingError | ProviderError | undefined => {
  const cause = error.cause
  if (cause?._tag === "RoutingError") return cause
  if (cause?._tag === "ProviderError" && cause.reason === "Unauthorized") return cause
  return undefined
}

/** Where each built-in provider is reached when `providers.<id>.baseUrl` is not set. */
const defaultBaseUrls: Readonly<Record<string, string>> = {
  openai: "https://api.openai.com",
  litellm: "http://127.0.0.1:4000",
  ollama: "http://127.0.0.1:11434"
}

/** Providers that cannot work without a key. */
const keyRequired = new Set(["openai"])

const pairCommand = (provider: string) => `npx tsx scripts/pair.ts ${provider}`

/**
 * Lines of advice for `cause`, one per provider tried, then the general ways out. Reads the
 * config (base URLs) and the secrets store (whether a key is there — never its value).
 */
export const guidance = (
  cause: RoutingError | ProviderError,
  config: ConfigManager["Type"],
  secrets: SecretsManager["Type"]
): Effect.Effect<ReadonlyArray<string>> =>
  Effect.gen(function*() {
    const attempts: ReadonlyArray<RouteAttempt> = cause._tag === "RoutingError"
      ? cause.attempts
      : [{ provider: cause.providerId, reason: `Unauthorized: ${cause.message}` }]
    const baseUrlOf = (provider: string) =>
      Effect.map(
        config.get(`providers.${provider}.baseUrl`),
        (value) => Option.getOrUndefined(Option.filter(value, Predicate.isString)) ?? defaultBaseUrls[provider]
      )
    const hasKey = (provider: string) =>
      Effect.map(Effect.either(secrets.resolveProviderKey(provider)), (found) =>
        found._tag === "Right" && Option.isSome(found.right))

    const lines: Array<string> = []
    if (attempts.length === 0) {
      const tier = cause._tag === "RoutingError" ? cause.tier ?? "this" : "this"
      lines.push(`No provider is mapped for the ${tier} tier (routing.tierMapping.${tier} is empty).`)
    }
    for (const { provider, reason } of attempts) {
      const envVar = providerEnvVar(provider)
      const baseUrl = yield* baseUrlOf(provider)
      const at = baseUrl !== undefined ? ` at ${baseUrl}` : ""
      if (reason.startsWith("not loaded")) {
        lines.push(`• ${provider} is not enabled. Pair it: ${pairCommand(provider)}`)
      } else if (reason.startsWith("Unauthorized")) {
        lines.push(
          `• ${provider} refused the API key${at}, or none was found. Set ${envVar}, ` +
            `or store a key with: ${pairCommand(provider)}`
        )
      } else if (reason.startsWith("unavailable")) {
        if (keyRequired.has(provider) && !(yield* hasKey(provider))) {
          lines.push(`• ${provider} has no API key. Set ${envVar}, or store one with: ${pairCommand(provider)}`)
        } else if (provider === "ollama") {
          lines.push(
            `• ollama: no Ollama server answered${at}. Start it (\`ollama serve\`, then \`ollama pull llama3.2\`), ` +
              `or pair another provider, e.g. ${pairCommand("openai")}`
          )
        } else {
          lines.push(
            `• ${provider} did not answer its health check${at}. Check that the server runs and that ` +
              `providers.${provider}.baseUrl is right; if it needs a key, set ${envVar} or run ${pairCommand(provider)}`
          )
        }
      } else if (reason.startsWith("in cooldown")) {
        lines.push(`• ${provider} failed several times just now and is paused for a moment; try again shortly.`)
      } else {
        lines.push(`• ${provider}${at}: ${reason}`)
      }
    }
    if (!attempts.some((attempt) => attempt.provider === "openai") && (yield* hasKey("openai"))) {
      lines.push(`• An OpenAI key is available (${providerEnvVar("openai")} or the secrets store): ` +
        `enable OpenAI with ${pairCommand("openai")}`)
    }
    return lines
  })
