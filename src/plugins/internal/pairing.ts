/**
 * The `<id>_pair` / `<id>_unpair` tools of the built-in plugins, in two trust levels.
 *
 * - `"model"`: the tools a plugin offers through `getPairingTools`, which an agent may hand to a
 *   model. A model is untrusted input (a prompt injection in a web page or a tool result speaks
 *   through it), so these tools cannot change where anything is sent: they take no base URL,
 *   never replace or delete stored credentials, and bind a new key to the base URL already
 *   configured. They can pair a provider for the first time and move tiers between providers
 *   the operator has set up.
 * - `"operator"`: the same tools for a person at a terminal (`scripts/pair.ts`): base URL,
 *   replacing a key and deleting credentials included. A base URL changed without a new key
 *   removes the stored key, since it was paired for another URL.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { Service as ConfigService } from "../../config/ConfigManager.js"
import { HttpUrl } from "../../config/KernelConfig.js"
import type { QueryTier } from "../../domain/Message.js"
import type { Service as SecretsService } from "../../secrets/SecretsManager.js"
import { localTools, tool } from "../../tools/LocalTools.js"
import type { ToolProvider } from "../../tools/ToolProvider.js"
import * as KeyBinding from "./keyBinding.js"

/** Who calls the tools: a model (untrusted) or a person at a terminal. */
export type Trust = "model" | "operator"

/** Every field a pairing tool may take; each provider's Schema picks its own. */
export interface PairArgs {
  readonly apiKey?: string
  readonly accessKeyId?: string
  readonly secretAccessKey?: string
  readonly region?: string
  readonly model?: string
  readonly baseUrl?: string
}

/** The credential fields of every provider: sensitive, and what "a key was given" means. */
export const credentialFields = ["apiKey", "accessKeyId", "secretAccessKey"] as const

export const read = (config: ConfigService, key: string) => Effect.map(config.get(key), Option.getOrUndefined)

export const readString = (config: ConfigService, key: string) =>
  Effect.map(read(config, key), (value) => Predicate.isString(value) && value !== "" ? value : undefined)

export const modelField = (defaultModel: string) =>
  Schema.optional(Schema.NonEmptyTrimmedString.annotations({ description: `Model to use (default ${defaultModel})` }))

/**
 * A credential as pasted: surrounding whitespace is trimmed rather than refused, because a
 * refusal would quote the value in the error.
 */
export const credentialField = (description: string) =>
  Schema.transform(Schema.String.annotations({ description }), Schema.NonEmptyTrimmedString, {
    strict: true,
    decode: (text) => text.trim(),
    encode: (text) => text
  })

/** Checked here, before anything is stored, so a bad URL cannot leave a half-done pairing. */
export const baseUrlField = Schema.optional(
  Schema.String.annotations({ description: "Base URL of the API (for proxies and self-hosted servers)" }).pipe(
    Schema.filter((text) =>
      text === "" || Schema.is(HttpUrl)(text) || `must be an http(s) URL such as "http://127.0.0.1:4000", got ${JSON.stringify(text)}`
    )
  )
)

const tiersAll: ReadonlyArray<QueryTier> = ["simple", "moderate", "complex", "reasoning"]

/**
 * The providers whose plugins this module knows. Only a tier mapped to one of them is known to
 * have no working route when it is not enabled; any other id may be an external plugin's.
 */
const builtinProviderIds: ReadonlyArray<string> = ["openai", "litellm", "bedrock", "ollama"]

const readEnabled = (config: ConfigService) =>
  Effect.map(read(config, "plugins.enabled"), (enabled) => Array.isArray(enabled) ? enabled.filter(Predicate.isString) : [])

const readMapping = (config: ConfigService) =>
  Effect.forEach(tiersAll, (tier) => Effect.map(readString(config, `routing.tierMapping.${tier}`), (id) => [tier, id] as const))

/** The other tiers, nearest first; at equal distance the higher tier first (as the router's fallbacks). */
const byDistance = (tier: QueryTier): ReadonlyArray<QueryTier> => {
  const index = tiersAll.indexOf(tier)
  return tiersAll.filter((other) => other !== tier).sort((a, b) =>
    Math.abs(tiersAll.indexOf(a) - index) - Math.abs(tiersAll.indexOf(b) - index) || tiersAll.indexOf(b) - tiersAll.indexOf(a)
  )
}

/**
 * Where an unpaired provider's tier goes: the provider of the nearest tier that stays on an
 * enabled provider; else `routing.defaultProvider` when it is enabled; else the first enabled
 * built-in. With nothing enabled no route works; the default is kept for the next pairing.
 */
const successorOf = (
  tier: QueryTier,
  mapping: ReadonlyMap<QueryTier, string | undefined>,
  enabled: ReadonlyArray<string>,
  defaultProvider: string
): string | undefined => {
  for (const other of byDistance(tier)) {
    const id = mapping.get(other)
    if (id !== undefined && enabled.includes(id)) return id
  }
  if (enabled.includes(defaultProvider)) return defaultProvider
  return enabled.find((id) => builtinProviderIds.includes(id))
}

const defaultProviderOf = (config: ConfigService, unpaired: string) =>
  Effect.map(readString(config, "routing.defaultProvider"), (configured) => {
    const fallback = configured ?? "ollama"
    return fallback === unpaired ? (unpaired === "ollama" ? "openai" : "ollama") : fallback
  })

/** "Tiers a, b now route to x; c to y." */
const describeMoves = (moves: ReadonlyArray<readonly [QueryTier, string]>): string => {
  const groups = new Map<string, Array<QueryTier>>()
  for (const [tier, id] of moves) groups.set(id, [...(groups.get(id) ?? []), tier])
  return [...groups].map(([id, tiers], index) =>
    index > 0 ? `${tiers.join(", ")} to ${id}` : tiers.length > 1
      ? `Tiers ${tiers.join(", ")} now route to ${id}`
      : `Tier ${tiers[0]} now routes to ${id}`
  ).join("; ") + "."
}

/** What a provider's pairing tools need to know about it. */
export interface PairingOptions {
  readonly id: string
  readonly name: string
  readonly defaultModel: string
  readonly tiers: ReadonlyArray<QueryTier>
  readonly secrets: SecretsService
  readonly config: ConfigService
  readonly trust: Trust
  /** The provider's own fields beside `model` and `baseUrl` (credentials, region). */
  readonly fields: Schema.Struct.Fields
  /** The secret names its credentials are stored under. */
  readonly secretNames: ReadonlyArray<string>
  /** Where requests go when `providers.<id>.baseUrl` is not set (`undefined`: the SDK's default). */
  readonly defaultBaseUrl: (hasKey: boolean) => string | undefined
  /** Stores the credentials given (and provider settings such as the region). */
  readonly store: (args: PairArgs) => Effect.Effect<void, unknown>
}

const failWith = (name: string, what: string) => (error: unknown) =>
  Effect.fail(`Pairing ${name} failed while ${what}: ${Predicate.hasProperty(error, "message") ? String(error.message) : "unknown error"}`)

const givesCredentials = (args: PairArgs) => credentialFields.some((field) => args[field] !== undefined)

/** The `<id>_pair` and `<id>_unpair` tools of one provider. */
export const pairingTools = (options: PairingOptions): ToolProvider => {
  const { config, id, secrets, trust } = options
  const fail = (what: string) => failWith(options.name, what)
  const hasStored = Effect.map(
    Effect.forEach(options.secretNames, (name) => secrets.check(name)),
    (found) => found.some(Boolean)
  )
  const pair = tool({
    name: `${id}_pair`,
    description: `Pair ${options.name} as a model provider: stores its credentials securely, sets the model, ` +
      `enables it and routes the ${options.tiers.join(" and ")} tiers to it. Takes effect on the next request.` +
      (trust === "model"
        ? " Its base URL, and replacing or deleting stored credentials, are left to the operator (scripts/pair.ts)."
        : ""),
    parameters: Schema.Struct({
      ...options.fields,
      model: modelField(options.defaultModel),
      ...(trust === "operator" ? { baseUrl: baseUrlField } : {})
    }) as unknown as Schema.Schema<PairArgs, unknown>,
    sensitive: [...credentialFields],
    handler: (args) =>
      Effect.gen(function*() {
        const stored = yield* hasStored.pipe(Effect.catchAll(fail("reading the stored credentials")))
        const newCredentials = givesCredentials(args)
        if (trust === "model" && stored && newCredentials) {
          return yield* Effect.fail(
            `${options.name} already has stored credentials; replacing them is left to the operator ` +
              `(npx tsx scripts/pair.ts ${id}). Nothing was changed.`
          )
        }
        const configured = yield* readString(config, `providers.${id}.baseUrl`)
        const baseUrl = args.baseUrl !== undefined && args.baseUrl !== "" ? args.baseUrl : configured
        const movesUrl = KeyBinding.normalizeBaseUrl(baseUrl) !== KeyBinding.normalizeBaseUrl(configured)
        let note = ""
        if (newCredentials) {
          yield* options.store(args).pipe(Effect.catchAll(fail("storing the credentials")))
          yield* KeyBinding.bind(secrets, id, baseUrl ?? options.defaultBaseUrl(true)).pipe(
            Effect.catchAll(fail("binding the credentials to the base URL"))
          )
        } else {
          yield* options.store(args).pipe(Effect.catchAll(fail("storing the settings")))
          if (stored && movesUrl) {
            // The stored key belongs to the old URL: it is removed rather than sent to the new one.
            for (const name of [...options.secretNames, KeyBinding.bindingKeyName(id)]) {
              yield* secrets.delete(name).pipe(Effect.catchAll(fail("removing the credentials of the old base URL")))
            }
            note = ` The stored credentials were for the previous base URL and were removed.`
          }
        }
        const model = args.model ?? (yield* readString(config, `providers.${id}.model`)) ?? options.defaultModel
        yield* config.set(`providers.${id}.model`, model).pipe(Effect.catchAll(fail("setting the model")))
        if (movesUrl && baseUrl !== undefined) {
          yield* config.set(`providers.${id}.baseUrl`, baseUrl).pipe(Effect.catchAll(fail("setting the base URL")))
        }
        const list = yield* readEnabled(config)
        if (!list.includes(id)) {
          yield* config.set("plugins.enabled", [...list, id]).pipe(Effect.catchAll(fail("enabling the plugin")))
        }
        const enabled = list.includes(id) ? list : [...list, id]
        // A tier left on a built-in provider that is not enabled has no working route (the
        // default ollama when only this provider is enabled): it is served by this one too.
        const orphaned: Array<QueryTier> = []
        for (const [tier, mapped] of yield* readMapping(config)) {
          if (!options.tiers.includes(tier) && mapped !== undefined && builtinProviderIds.includes(mapped) && !enabled.includes(mapped)) {
            orphaned.push(tier)
          }
        }
        for (const tier of [...options.tiers, ...orphaned]) {
          yield* config.set(`routing.tierMapping.${tier}`, id).pipe(Effect.catchAll(fail("updating the tier mapping")))
        }
        return `${options.name} paired (model ${model}). Tiers ${options.tiers.join(", ")} now route to ${id}` +
          (orphaned.length > 0 ? ` (and ${orphaned.join(", ")}, whose provider was not enabled)` : "") +
          `; this takes effect on the next request.${note}`
      })
  })
  const unpair = tool({
    name: `${id}_unpair`,
    description: `Disconnect ${options.name}: disables it and routes its tiers to the nearest provider still enabled.` +
      (trust === "operator" ? ` Set deleteKey to also delete its stored credentials.` : ""),
    parameters: Schema.Struct(
      trust === "operator"
        ? { deleteKey: Schema.optional(Schema.Boolean.annotations({ description: "Also delete the stored credentials" })) }
        : {}
    ) as unknown as Schema.Schema<{ readonly deleteKey?: boolean }, unknown>,
    handler: ({ deleteKey }) =>
      Effect.gen(function*() {
        if (trust === "model" && deleteKey !== undefined) {
          return yield* Effect.fail(
            `Deleting ${options.name}'s stored credentials is left to the operator ` +
              `(npx tsx scripts/pair.ts ${id} --unpair --delete-key). Nothing was changed.`
          )
        }
        const remaining = (yield* readEnabled(config)).filter((name) => name !== id)
        yield* config.set("plugins.enabled", remaining).pipe(Effect.catchAll(fail("disabling the plugin")))
        const mapping = new Map(yield* readMapping(config))
        const defaultProvider = yield* defaultProviderOf(config, id)
        const moved: Array<readonly [QueryTier, string]> = []
        for (const [tier, mapped] of mapping) {
          if (mapped !== id) continue
          const successor = successorOf(tier, mapping, remaining, defaultProvider) ?? defaultProvider
          yield* config.set(`routing.tierMapping.${tier}`, successor).pipe(Effect.catchAll(fail("updating the tier mapping")))
          moved.push([tier, successor])
        }
        if (deleteKey === true) {
          const keys = yield* secrets.list(`provider.${id}.*`).pipe(Effect.catchAll(fail("listing the credentials")))
          for (const key of keys) yield* secrets.delete(key).pipe(Effect.catchAll(fail("deleting the credentials")))
        }
        return `${options.name} disabled.` +
          (moved.length > 0 ? ` ${describeMoves(moved)}` : "") +
          (remaining.length > 0 ? "" : " No provider is enabled now: pair one (npx tsx scripts/pair.ts <provider>).") +
          (deleteKey === true ? " Its stored credentials were deleted." : "")
      })
  })
  return localTools([pair, unpair], { name: `${id}-pairing` })
}

/** Stores a single API key under `provider.<id>.apiKey`. */
export const storeApiKey = (secrets: SecretsService, keyName: string) => (args: PairArgs) =>
  args.apiKey !== undefined ? secrets.store(keyName, Redacted.make(args.apiKey)) : Effect.void
