/**
 * Key names: validation, glob matching and the mapping to environment variable names. Shared
 * by every secrets layer so they all accept and list the same names.
 */
import * as Effect from "effect/Effect"
import { SecretsError } from "../../domain/Errors.js"

const MAX_KEY_LENGTH = 512

// A lone surrogate cannot be written as UTF-8; it would come back as U+FFFD, which is garbage.
const loneSurrogate = /[\uD800-\uDFFF]/u

const keyProblem = (key: string): string | undefined => {
  if (key.length === 0) return "it is empty"
  if (key.length > MAX_KEY_LENGTH) return `it is longer than ${MAX_KEY_LENGTH} characters`
  if (/[\s*?]/.test(key) || /\p{Cc}/u.test(key)) return "it contains whitespace, a control character, '*' or '?'"
  if (loneSurrogate.test(key)) return "it is not valid Unicode text"
  if (key.split(".").some((segment) => segment.length === 0)) return "it has an empty dotted segment"
  return undefined
}

/** Fails with `InvalidKey` unless `key` is a usable dotted name such as `provider.openai.apiKey`. */
export const validateKey = (key: string): Effect.Effect<string, SecretsError> => {
  const problem = keyProblem(key)
  return problem === undefined ? Effect.succeed(key) : Effect.fail(
    new SecretsError({
      reason: "InvalidKey",
      key,
      message: `Invalid secret key ${JSON.stringify(key)}: ${problem}. ` +
        "Use dot-separated segments without whitespace or glob characters, e.g. \"provider.openai.apiKey\"."
    })
  )
}

/** Fails with `InvalidKey` when a value cannot be stored faithfully; the message never holds the value. */
export const validateValue = (key: string, value: string): Effect.Effect<void, SecretsError> =>
  loneSurrogate.test(value)
    ? Effect.fail(
      new SecretsError({
        reason: "InvalidKey",
        key,
        message: `The value for secret ${JSON.stringify(key)} is not valid Unicode text (it has a lone surrogate); ` +
          "store the value as proper text."
      })
    )
    : Effect.void

/** Fails with `InvalidKey` unless `providerId` can be one segment of a key name. */
export const validateProviderId = (providerId: string): Effect.Effect<string, SecretsError> =>
  providerId.length === 0 || providerId.includes(".") || keyProblem(providerId) !== undefined
    ? Effect.fail(
      new SecretsError({
        reason: "InvalidKey",
        key: providerId,
        message: `Invalid provider id ${JSON.stringify(providerId)}: it must be one non-empty segment ` +
          "without dots, whitespace or glob characters, e.g. \"openai\"."
      })
    )
    : Effect.succeed(providerId)

/**
 * Compiles a glob over dotted names: `*` matches within one segment (never a dot), `**` matches
 * any run of characters including dots, `?` matches one character other than a dot.
 */
export const globToRegExp = (glob: string): RegExp => {
  let source = ""
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i]!
    if (char === "*" && glob[i + 1] === "*") {
      source += ".*"
      i++
    } else if (char === "*") {
      source += "[^.]*"
    } else if (char === "?") {
      source += "[^.]"
    } else {
      source += char.replace(/[\\^$.|+()[\]{}]/g, "\\$&")
    }
  }
  return new RegExp(`^${source}$`, "u")
}

/** Sorted names matching an optional glob. */
export const filterKeys = (names: Iterable<string>, glob: string | undefined): ReadonlyArray<string> => {
  const pattern = glob === undefined ? undefined : globToRegExp(glob)
  return Array.from(names).filter((name) => pattern === undefined || pattern.test(name)).sort()
}

/** `provider.<id>.apiKey` → `<id>`, for any other name `undefined`. */
export const providerIdOfKey = (key: string): string | undefined => {
  const match = /^provider\.([^.]+)\.apiKey$/.exec(key)
  return match?.[1]
}

/** `providers.bedrock.accessKeyId` → `PROVIDERS_BEDROCK_ACCESS_KEY_ID`. */
export const constantCase = (key: string): string =>
  key
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/[^A-Za-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .toUpperCase()
