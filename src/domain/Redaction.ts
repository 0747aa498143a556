/**
 * Redaction: the one set of rules by which secrets are kept out of events, errors, log lines,
 * stored history and anything sent to a model.
 *
 * Two mechanisms, used together:
 * - **Sensitive tool arguments** (a tool's `sensitive` fields, see `ToolDefinition`) are wrapped
 *   in `Redacted` where a tool call enters the kernel: the provider's parse of the model's
 *   answer. From there on, encoding the call (an event, the history, the next request) shows
 *   `<redacted>`; only the tool that declared the field unwraps it, with `revealArguments`.
 * - **Text scrubbing** for text the kernel did not write (an error body a server sent back, a
 *   message an MCP server or a remote agent echoed): every known secret is replaced in each form
 *   it can take inside other text — as it is, JSON-escaped (once or twice) and URL-encoded —
 *   and credentials recognisable by their shape (bearer tokens, `sk-` keys, AWS access key ids
 *   and signatures, passwords in URLs, key or token query parameters) are replaced even when
 *   their value is not known.
 *
 * A secret of any length is scrubbed: a short one blanks out more text than it needs to, which
 * is the right side to err on.
 *
 * @since 0.1.0
 */
import * as Redacted from "effect/Redacted"

/** What a secret is replaced with. @since 0.1.0 */
export const REDACTED = "<redacted>"

/**
 * The forms a secret can take inside other text, longest first: as it is, JSON-escaped (as in
 * a JSON body, and again inside a JSON string that quotes a JSON body) and URL-encoded.
 *
 * @since 0.1.0
 */
export const formsOf = (secret: string): ReadonlyArray<string> => {
  if (secret === "") return []
  const forms = new Set<string>([secret])
  const escaped = JSON.stringify(secret).slice(1, -1)
  forms.add(escaped)
  forms.add(JSON.stringify(escaped).slice(1, -1))
  forms.add(encodeURIComponent(secret))
  forms.add(encodeURIComponent(secret).replace(/%20/g, "+"))
  return [...forms].sort((a, b) => b.length - a.length)
}

/** A secret given as text or as `Redacted` text. @since 0.1.0 */
export type Secret = string | Redacted.Redacted<string>

const textOf = (secret: Secret): string => (Redacted.isRedacted(secret) ? Redacted.value(secret) : secret)

// Credentials recognisable by their shape, whatever their value.
const patterns: ReadonlyArray<readonly [RegExp, string]> = [
  [/\b(Bearer|Basic)\s+[^\s"',;]+/gi, `$1 ${REDACTED}`],
  [/\b(sk|pk|rk)-[A-Za-z0-9_-]{8,}/g, REDACTED],
  [/\b(AKIA|ASIA)[A-Z0-9]{12,}/g, REDACTED],
  [/(Credential=)[^\s,"']+/g, `$1${REDACTED}`],
  [/(Signature=)[0-9a-f]{16,}/gi, `$1${REDACTED}`],
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^\s/:@"']*:)[^\s/@"']+@/gi, `$1${REDACTED}@`],
  [
    /([?&](?:api[_-]?key|key|token|access[_-]?token|secret|password|sig|signature|x-amz-security-token)=)[^&\s"'#]+/gi,
    `$1${REDACTED}`
  ],
  // A JSON field named for a credential, also inside a JSON string that quotes a JSON body.
  [
    /(\\*"(?:api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|id[_-]?token|token|secret|client[_-]?secret|password|passwd|private[_-]?key)\\*"\s*:\s*\\*")([^"\\]+)/gi,
    `$1${REDACTED}`
  ]
]

/**
 * Replaces credentials recognisable by their shape: bearer and basic tokens, `sk-`/`pk-`/`rk-`
 * keys, AWS access key ids, signatures and credential scopes, passwords in URLs, key, token or
 * signature query parameters, and JSON fields named for a credential (`"password": "…"`).
 *
 * @since 0.1.0
 */
export const scrubPatterns = (text: string): string => {
  let out = text
  for (const [pattern, replacement] of patterns) out = out.replace(pattern, replacement)
  return out
}

/**
 * A function that scrubs text of the given secrets (in every form, see `formsOf`) and of
 * credentials recognisable by their shape. Build it once per set of secrets and reuse it.
 *
 * @example
 * ```ts
 * const clean = Redaction.scrubber([Redacted.make("s3cr3t")])
 * clean(`upstream said: bad key "s3cr3t"`) // `upstream said: bad key "<redacted>"`
 * ```
 * @since 0.1.0
 */
export const scrubber = (secrets: Iterable<Secret | undefined>): (text: string) => string => {
  const forms = new Set<string>()
  for (const secret of secrets) {
    if (secret === undefined) continue
    for (const form of formsOf(textOf(secret))) forms.add(form)
  }
  const ordered = [...forms].sort((a, b) => b.length - a.length)
  return (text) => {
    let out = text
    for (const form of ordered) if (out.includes(form)) out = out.split(form).join(REDACTED)
    return scrubPatterns(out)
  }
}

/** Scrubs one text of the given secrets and of credential shapes (see `scrubber`). @since 0.1.0 */
export const scrub = (text: string, secrets: Iterable<Secret | undefined>): string => scrubber(secrets)(text)

/**
 * The text values inside a value (strings, numbers of four digits or more, `Redacted` contents,
 * and those nested in arrays and objects): what a sensitive argument could show up as in a
 * message.
 *
 * @since 0.1.0
 */
export const valuesOf = (value: unknown): ReadonlyArray<string> => {
  const found: Array<string> = []
  const collect = (inner: unknown, depth: number): void => {
    if (depth > 8) return
    if (Redacted.isRedacted(inner)) return collect(Redacted.value(inner), depth + 1)
    if (typeof inner === "string") {
      if (inner !== "") found.push(inner)
    } else if (typeof inner === "number" || typeof inner === "bigint") {
      // Short numbers would blank out unrelated digits; they are not secrets anyway.
      const text = String(inner)
      if (text.length >= 4) found.push(text)
    } else if (typeof inner === "object" && inner !== null) {
      for (const nested of Object.values(inner)) collect(nested, depth + 1)
    }
  }
  collect(value, 0)
  return found
}

/**
 * Wraps the values of the `sensitive` fields of a tool call's arguments in `Redacted`, so that
 * every encoding of the call from here on shows `<redacted>`. Values already wrapped stay as
 * they are; arguments without sensitive fields are returned unchanged (the same object).
 *
 * @since 0.1.0
 */
export const protectArguments = (
  args: Record<string, unknown>,
  sensitive: ReadonlyArray<string> | undefined
): Record<string, unknown> => {
  if (sensitive === undefined || sensitive.length === 0) return args
  let out: Record<string, unknown> | undefined
  for (const key of sensitive) {
    if (!Object.prototype.hasOwnProperty.call(args, key)) continue
    const value = args[key]
    if (Redacted.isRedacted(value)) continue
    out ??= { ...args }
    out[key] = Redacted.make(value)
  }
  return out ?? args
}

/**
 * The arguments as the tool that declared them receives them: `Redacted` values unwrapped.
 * Returns the same object when nothing is wrapped.
 *
 * @since 0.1.0
 */
export const revealArguments = (args: Record<string, unknown>): Record<string, unknown> => {
  let out: Record<string, unknown> | undefined
  for (const key in args) {
    const value = args[key]
    if (!Redacted.isRedacted(value)) continue
    out ??= { ...args }
    out[key] = Redacted.value(value)
  }
  return out ?? args
}

/**
 * The arguments as events, history and models see them: `Redacted` values replaced by the
 * plain text `<redacted>`. Returns the same object when nothing is wrapped.
 *
 * @since 0.1.0
 */
export const showArguments = (args: Record<string, unknown>): Record<string, unknown> => {
  let out: Record<string, unknown> | undefined
  for (const key in args) {
    if (!Redacted.isRedacted(args[key])) continue
    out ??= { ...args }
    out[key] = REDACTED
  }
  return out ?? args
}

/**
 * The secret values held in `Redacted` arguments, for scrubbing a tool's messages of them.
 *
 * @since 0.1.0
 */
export const secretsOfArguments = (args: Record<string, unknown>): ReadonlyArray<string> => {
  let found: Array<string> | undefined
  for (const key in args) {
    const value = args[key]
    if (Redacted.isRedacted(value)) (found ??= []).push(...valuesOf(value))
  }
  return found ?? noSecrets
}

const noSecrets: ReadonlyArray<string> = []

const credentialName = /auth|key|token|secret|passw|pwd|cookie|credential|session|signature/i

const collectRecord = (
  record: Readonly<Record<string, string | Redacted.Redacted<string>>>,
  others: number | undefined
): ReadonlyArray<string> => {
  const found = new Set<string>()
  for (const name in record) {
    const value = textOf(record[name]!).trim()
    const minimum = credentialName.test(name) ? 1 : others
    if (minimum === undefined) continue
    if (value.length >= minimum) found.add(value)
    const lastWord = value.split(/\s+/).pop()
    if (lastWord !== undefined && lastWord.length >= minimum) found.add(lastWord)
  }
  return [...found].sort((a, b) => b.length - a.length)
}

/**
 * The secrets in a set of request headers, for `scrubber`: every value (and its last word, the
 * token of `Bearer <token>`) of a header whose name speaks of a credential (`Authorization`,
 * `X-Api-Key`, `Cookie`, …) at any length, and the values of four characters or more of the
 * others, since headers handed to a tool provider are mostly credentials and servers echo them.
 *
 * @since 0.1.0
 */
export const secretsOfHeaders = (headers: Readonly<Record<string, string | Redacted.Redacted<string>>>): ReadonlyArray<string> =>
  collectRecord(headers, 4)

/**
 * The secrets in a child process's environment, for `scrubber`: the values of the variables
 * whose name speaks of a credential (`GITHUB_TOKEN`, `API_KEY`, `DB_PASSWORD`, …), at any length.
 *
 * @since 0.1.0
 */
export const secretsOfEnvironment = (env: Readonly<Record<string, string | Redacted.Redacted<string>>>): ReadonlyArray<string> =>
  collectRecord(env, undefined)

/**
 * A value (JSON data: a tool's result, say) with every string in it scrubbed by `scrub`. Returns
 * the same value when nothing changed, so clean results cost no copy.
 *
 * @since 0.1.0
 */
export const scrubValue = <A>(value: A, scrub: (text: string) => string): A => {
  const walk = (inner: unknown, depth: number): unknown => {
    if (typeof inner === "string") return scrub(inner)
    if (depth > 32 || typeof inner !== "object" || inner === null) return inner
    if (Array.isArray(inner)) {
      let out: Array<unknown> | undefined
      inner.forEach((item, index) => {
        const cleaned = walk(item, depth + 1)
        if (cleaned !== item) (out ??= [...inner])[index] = cleaned
      })
      return out ?? inner
    }
    let out: Record<string, unknown> | undefined
    for (const key in inner as Record<string, unknown>) {
      const item = (inner as Record<string, unknown>)[key]
      const cleaned = walk(item, depth + 1)
      if (cleaned !== item) (out ??= { ...(inner as Record<string, unknown>) })[key] = cleaned
    }
    return out ?? inner
  }
  return walk(value, 0) as A
}
