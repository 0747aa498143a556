/**
 * The typed shape of the kernel's configuration: one Schema for every known key, the documented
 * defaults, and helpers for the dotted keys that address values in the configuration document.
 *
 * Known keys and their defaults (keys not listed here are allowed and hold any JSON):
 *
 * | key | type | default |
 * |---|---|---|
 * | `plugins.enabled` | string[] (plugin ids) | `["ollama"]` |
 * | `routing.defaultProvider` | provider id | `"ollama"` |
 * | `routing.tierMapping.simple` | provider id | `"ollama"` |
 * | `routing.tierMapping.moderate` | provider id | `"ollama"` |
 * | `routing.tierMapping.complex` | provider id | `"ollama"` |
 * | `routing.tierMapping.reasoning` | provider id | `"ollama"` |
 * | `routing.fallbacks.<tier>` | provider id[] | none |
 * | `routing.classifier` | JSON object (checked by the QueryClassifier) | none |
 * | `routing.healthTtlMs` | non-negative number | `30000` |
 * | `routing.cooldownMs` | non-negative number | `30000` |
 * | `providers.<id>.model` | non-empty string | none |
 * | `providers.<id>.baseUrl` | http(s) URL | none |
 * | `providers.<id>.region` | non-empty string | none |
 * | `providers.<id>.rateLimit` | `{ requestsPerMinute?, maxConcurrent?, maxQueue? }` | none |
 * | `providers.<id>.timeouts` | `{ firstChunkMs?, idleMs?, requestMs? }` | none |
 * | `providers.<id>.limits` | `{ maxResponseBytes?, maxErrorBodyBytes?, maxEventBytes? }` | 8 MiB, 64 KiB, 1 MiB |
 * | `providers.<id>.healthCheck` | `"models"` or `"liteLLMLiveliness"` | none |
 * | `mcp.servers.<name>` | `{ url? or command?, args?, env?, prefix?, timeoutMs? }` | none |
 * | `agent.maxSteps` | positive integer | `10` |
 * | `storage.url` | `sqlite:<path>` or `postgres://user@host:port/database` (no password) | the SQLite file under the XDG data dir |
 * | `storage.retention.days` | positive integer | `30` |
 *
 * A provider id is a non-empty name without dots or whitespace (it becomes a segment of
 * `providers.<id>`); an MCP server has exactly one of `url` and `command`. The PostgreSQL
 * password is never part of `storage.url`: it is the secret `storage.postgres.password`.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

const optional = <S extends Schema.Schema.All>(schema: S) => Schema.optionalWith(schema, { exact: true })

/**
 * The id of a provider as used in `routing.*` and `providers.<id>`: non-empty, without dots
 * (a dot would split the key) and without whitespace.
 *
 * @since 0.1.0
 */
export const ProviderId = Schema.String.pipe(
  Schema.filter((id) => /^[^.\s]+$/.test(id), {
    message: () => "a provider id must be a non-empty name without dots or spaces, e.g. \"openai\"",
    identifier: "ProviderId"
  })
)

/**
 * An absolute `http:` or `https:` URL, e.g. `http://127.0.0.1:11434`.
 *
 * @since 0.1.0
 */
export const HttpUrl = Schema.String.pipe(
  Schema.filter((text) => {
    if (!URL.canParse(text)) return false
    const protocol = new URL(text).protocol
    return protocol === "http:" || protocol === "https:"
  }, {
    message: (issue) => `must be an http(s) URL such as "http://127.0.0.1:11434", got ${JSON.stringify(issue.actual)}`,
    identifier: "HttpUrl"
  })
)

const PositiveInt = Schema.Int.pipe(Schema.positive()).annotations({ identifier: "PositiveInt" })
const PositiveMillis = Schema.Number.pipe(Schema.finite(), Schema.positive()).annotations({ identifier: "PositiveMillis" })
const NonNegativeMillis = Schema.Number.pipe(Schema.finite(), Schema.nonNegative()).annotations({
  identifier: "NonNegativeMillis"
})

/**
 * The four routing tiers, from cheapest to most capable model.
 *
 * @since 0.1.0
 */
export const Tier = Schema.Literal("simple", "moderate", "complex", "reasoning")
export type Tier = typeof Tier.Type

/** Every tier, in order. @since 0.1.0 */
export const tiers: ReadonlyArray<Tier> = Tier.literals

const defaultProviderId = "ollama"
const withDefaultProvider = Schema.optionalWith(ProviderId, { exact: true, default: () => defaultProviderId })

/**
 * Which provider serves each tier; every tier defaults to `"ollama"`.
 *
 * @since 0.1.0
 */
export const TierMapping = Schema.Struct({
  simple: withDefaultProvider,
  moderate: withDefaultProvider,
  complex: withDefaultProvider,
  reasoning: withDefaultProvider
})
export type TierMapping = typeof TierMapping.Type

const ProviderIds = Schema.Array(ProviderId)

/**
 * Providers to try, in order, when a tier's provider is unavailable.
 *
 * @since 0.1.0
 */
export const TierFallbacks = Schema.Struct({
  simple: optional(ProviderIds),
  moderate: optional(ProviderIds),
  complex: optional(ProviderIds),
  reasoning: optional(ProviderIds)
})
export type TierFallbacks = typeof TierFallbacks.Type

/**
 * Any JSON object; used where another module owns the detailed shape (the classifier).
 *
 * @since 0.1.0
 */
export const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown }).annotations({
  identifier: "JsonObject",
  message: () => "must be a JSON object"
})

/**
 * The `routing` section: the default provider, the tier mapping, fallbacks, the classifier's
 * settings and the health/cooldown timings the router uses.
 *
 * @since 0.1.0
 */
export const Routing = Schema.Struct({
  defaultProvider: withDefaultProvider,
  tierMapping: Schema.optionalWith(TierMapping, { exact: true, default: () => TierMapping.make({}) }),
  fallbacks: optional(TierFallbacks),
  classifier: optional(JsonObject),
  healthTtlMs: Schema.optionalWith(NonNegativeMillis, { exact: true, default: () => 30_000 }),
  cooldownMs: Schema.optionalWith(NonNegativeMillis, { exact: true, default: () => 30_000 })
})
export type Routing = typeof Routing.Type

/** Client-side limits for one provider. @since 0.1.0 */
export const RateLimit = Schema.Struct({
  requestsPerMinute: optional(PositiveInt),
  maxConcurrent: optional(PositiveInt),
  maxQueue: optional(Schema.Int.pipe(Schema.nonNegative()))
})
export type RateLimit = typeof RateLimit.Type

/** The bounds on one provider's waits, in milliseconds. @since 0.1.0 */
export const Timeouts = Schema.Struct({
  firstChunkMs: optional(PositiveMillis),
  idleMs: optional(PositiveMillis),
  requestMs: optional(PositiveMillis)
})
export type Timeouts = typeof Timeouts.Type

/** Bounds on what is read of one provider's answers, in bytes. @since 0.1.0 */
export const Limits = Schema.Struct({
  maxResponseBytes: optional(PositiveInt),
  maxErrorBodyBytes: optional(PositiveInt),
  maxEventBytes: optional(PositiveInt)
})
export type Limits = typeof Limits.Type

/** How a provider's health is probed: `GET /v1/models` or LiteLLM's liveliness route. @since 0.1.0 */
export const HealthCheck = Schema.Literal("models", "liteLLMLiveliness")
export type HealthCheck = typeof HealthCheck.Type

const NonEmptyText = Schema.String.pipe(Schema.minLength(1, { message: () => "must be a non-empty string" }))

/** The settings under `providers.<id>`. @since 0.1.0 */
export const ProviderSettings = Schema.Struct({
  model: optional(NonEmptyText),
  baseUrl: optional(HttpUrl),
  region: optional(NonEmptyText),
  rateLimit: optional(RateLimit),
  timeouts: optional(Timeouts),
  limits: optional(Limits),
  healthCheck: optional(HealthCheck)
})
export type ProviderSettings = typeof ProviderSettings.Type

const isProviderId = Schema.is(ProviderId)

// A refined record key would let a bad id through as an "excess" property, so the ids are checked
// on the record as a whole.
const Providers = Schema.Record({ key: Schema.String, value: ProviderSettings }).pipe(
  Schema.filter((providers) => {
    const bad = Object.keys(providers).filter((id) => !isProviderId(id))
    return bad.length === 0 ||
      `provider ids must be non-empty names without dots or spaces; rename ${bad.map((id) => JSON.stringify(id)).join(", ")}`
  })
)

/**
 * One MCP server under `mcp.servers.<name>`: either `url` (Streamable HTTP or legacy SSE) or
 * `command` with `args`/`env` (stdio), never both.
 *
 * @since 0.1.0
 */
export const McpServer = Schema.Struct({
  url: optional(HttpUrl),
  command: optional(NonEmptyText),
  args: optional(Schema.Array(Schema.String)),
  env: optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  prefix: optional(Schema.Boolean),
  timeoutMs: optional(PositiveMillis)
}).pipe(
  Schema.filter((server) => (server.url === undefined) !== (server.command === undefined), {
    message: () => "an MCP server needs exactly one of \"url\" (HTTP) or \"command\" (stdio)"
  })
)
export type McpServer = typeof McpServer.Type

/**
 * Where the kernel keeps its state: `sqlite:<path>` or `postgres://user@host:port/database`.
 * A URL carrying a password is refused, since configuration is not encrypted.
 *
 * @since 0.1.0
 */
export const StorageUrl = Schema.String.pipe(
  Schema.filter((text) => {
    if (text.startsWith("sqlite:")) return text.length > "sqlite:".length || "sqlite: needs a path, e.g. sqlite:/var/lib/agent/kernel.db"
    if (!/^postgres(ql)?:\/\//.test(text) || !URL.canParse(text)) {
      return `must be sqlite:<path> or postgres://user@host:port/database, got ${JSON.stringify(text)}`
    }
    return new URL(text).password === "" ||
      "must not carry a password: store it with the secrets store under storage.postgres.password"
  }, { identifier: "StorageUrl" })
)

/** The retention of run event logs, in days, when `storage.retention.days` is not set. @since 0.1.0 */
export const defaultRetentionDays = 30

/** The `storage` section. @since 0.1.0 */
export const StorageSettings = Schema.Struct({
  url: optional(StorageUrl),
  retention: optional(Schema.Struct({ days: optional(PositiveInt) }))
})
export type StorageSettings = typeof StorageSettings.Type

/**
 * The whole configuration document. Decoding fills in the defaults from the table in this
 * module's description; encoding leaves them in.
 *
 * @since 0.1.0
 */
export const KernelConfig = Schema.Struct({
  plugins: Schema.optionalWith(
    Schema.Struct({
      enabled: Schema.optionalWith(Schema.Array(NonEmptyText), { exact: true, default: () => [defaultProviderId] })
    }),
    { exact: true, default: () => ({ enabled: [defaultProviderId] }) }
  ),
  routing: Schema.optionalWith(Routing, { exact: true, default: () => Routing.make({}) }),
  providers: optional(Providers),
  mcp: optional(Schema.Struct({ servers: optional(Schema.Record({ key: Schema.String, value: McpServer })) })),
  agent: Schema.optionalWith(
    Schema.Struct({ maxSteps: Schema.optionalWith(PositiveInt, { exact: true, default: () => 10 }) }),
    { exact: true, default: () => ({ maxSteps: 10 }) }
  ),
  storage: optional(StorageSettings)
})
export type KernelConfig = typeof KernelConfig.Type

const decodeDocument = Schema.decodeUnknownEither(KernelConfig, { onExcessProperty: "preserve", errors: "all" })

/**
 * The configuration an empty document stands for: every documented default.
 *
 * @since 0.1.0
 */
export const defaults: KernelConfig = Either.getOrThrow(decodeDocument({}))

/**
 * Checks a whole configuration document against the Schema. On success it returns the document
 * with defaults filled in and unknown keys kept; on failure a readable list of every problem,
 * one line per dotted key.
 *
 * @since 0.1.0
 */
export const validate = (document: unknown): Either.Either<KernelConfig & Record<string, unknown>, string> =>
  Either.mapLeft(
    decodeDocument(document) as Either.Either<KernelConfig & Record<string, unknown>, ParseResult.ParseError>,
    formatParseError
  )

/**
 * Formats a Schema failure as `dotted.key: problem` lines (root-level problems say `(root)`).
 *
 * @since 0.1.0
 */
export const formatParseError = (error: ParseResult.ParseError): string => {
  const lines = ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) =>
    `${issue.path.length === 0 ? "(root)" : issue.path.map(String).join(".")}: ${issue.message}`
  )
  return Array.from(new Set(lines)).join("; ")
}

/**
 * Splits a dotted key into its segments, or explains why it is not a valid key: keys are
 * non-empty, dot-separated segments such as `providers.openai.model`, and `__proto__` is not a
 * segment.
 *
 * @since 0.1.0
 */
export const parseKey = (key: string): Either.Either<ReadonlyArray<string>, string> => {
  const segments = key.split(".")
  if (key.length === 0 || segments.some((segment) => segment.length === 0)) {
    return Either.left(
      `invalid key ${JSON.stringify(key)}: a key is one or more non-empty names joined by dots, e.g. "providers.openai.model"`
    )
  }
  if (segments.includes("__proto__")) {
    return Either.left(`invalid key ${JSON.stringify(key)}: "__proto__" cannot be used as a key segment`)
  }
  return Either.right(segments)
}

/**
 * Whether a change to one key can affect the value at the other: the keys are equal, or one is
 * a parent of the other (`routing` and `routing.tierMapping.simple`). Consumers of `changes` use
 * it to decide whether to rebuild what they derived from a subtree.
 *
 * @since 0.1.0
 */
export const keysOverlap = (a: string, b: string): boolean =>
  a === b || a.startsWith(`${b}.`) || b.startsWith(`${a}.`)

/** The key of a tier's provider: `routing.tierMapping.<tier>`. @since 0.1.0 */
export const tierMappingKey = (tier: Tier): string => `routing.tierMapping.${tier}`

/** The key of a tier's fallbacks: `routing.fallbacks.<tier>`. @since 0.1.0 */
export const fallbacksKey = (tier: Tier): string => `routing.fallbacks.${tier}`

/** The key of one provider setting: `providers.<id>.<setting>`. @since 0.1.0 */
export const providerKey = (providerId: string, setting: keyof ProviderSettings): string =>
  `providers.${providerId}.${setting}`
