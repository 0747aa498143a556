/**
 * The secrets store: API keys and other credentials, always handled as `Redacted`.
 *
 * Three storages share one service: in memory (`layerMemory`), an encrypted file
 * (`layerFile`, and `layer`, the default under the user's XDG config directory) and the
 * process environment (`layerEnv`, read-only). Every one of them resolves a provider's key
 * from the store first and then from the provider's conventional environment variable
 * (`providerEnvVars`). Environment variables are read through Effect `Config`, so a
 * `ConfigProvider` decides where they come from.
 *
 * @example
 * ```ts
 * const program = Effect.gen(function*() {
 *   const secrets = yield* SecretsManager.SecretsManager
 *   yield* secrets.store(SecretsManager.buildProviderKeyName("openai"), Redacted.make("sk-..."))
 *   const key = yield* secrets.resolveProviderKey("openai") // Option<Redacted<string>>
 * })
 * program.pipe(Effect.provide(SecretsManager.layer), Effect.provide(NodeContext.layer))
 * ```
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Os from "node:os"
import { SecretsError } from "../domain/Errors.js"
import { defaultLockOptions } from "../internal/fileLock.js"
import { withSpan } from "../internal/tracing.js"
import { type Backend, memoryBackend } from "./internal/backend.js"
import { makeFileBackend } from "./internal/fileStore.js"
import * as Keys from "./internal/keys.js"

/** A key was stored or deleted (never the value). @since 0.1.0 */
export interface SecretChange {
  readonly key: string
  readonly op: "store" | "delete"
}

/**
 * The secrets service. Key names are dotted (`provider.openai.apiKey`); values go in and come
 * out `Redacted`, and no error, event or log line ever carries one.
 *
 * @since 0.1.0
 */
export interface Service {
  readonly store: (key: string, value: string | Redacted.Redacted<string>) => Effect.Effect<void, SecretsError>
  readonly retrieve: (key: string) => Effect.Effect<Option.Option<Redacted.Redacted<string>>, SecretsError>
  readonly check: (key: string) => Effect.Effect<boolean, SecretsError>
  /** Deletes a key; succeeds with whether it existed. */
  readonly delete: (key: string) => Effect.Effect<boolean, SecretsError>
  /** Key names, optionally filtered by a glob where `*` matches within one dotted segment. */
  readonly list: (glob?: string) => Effect.Effect<ReadonlyArray<string>, SecretsError>
  /** The stored `provider.<id>.apiKey`, else the provider's conventional environment variable. */
  readonly resolveProviderKey: (providerId: string) => Effect.Effect<Option.Option<Redacted.Redacted<string>>, SecretsError>
  /** Every successful store or delete, for caches that must be rebuilt. */
  readonly changes: Stream.Stream<SecretChange>
}

/** The secrets service's tag. @since 0.1.0 */
export class SecretsManager extends Context.Tag("effect-agent-kernel/SecretsManager")<SecretsManager, Service>() {}

/**
 * The conventional key name of a provider's API key.
 *
 * @since 0.1.0
 */
export const buildProviderKeyName = (providerId: string): string => `provider.${providerId}.apiKey`

/**
 * The environment variable each known provider's SDK reads its API key from, used by
 * `resolveProviderKey` when no key is stored. Ids are matched case-insensitively; any other
 * provider id `x` uses `X_API_KEY` (see `providerEnvVar`). Bedrock's entry is its API-key
 * (bearer token) variable; IAM credentials come from the AWS default chain instead.
 *
 * | provider | variable |
 * |---|---|
 * | openai | `OPENAI_API_KEY` |
 * | litellm | `LITELLM_API_KEY` |
 * | anthropic | `ANTHROPIC_API_KEY` |
 * | ollama | `OLLAMA_API_KEY` |
 * | bedrock | `AWS_BEARER_TOKEN_BEDROCK` |
 * | groq | `GROQ_API_KEY` |
 * | mistral | `MISTRAL_API_KEY` |
 * | openrouter | `OPENROUTER_API_KEY` |
 * | gemini | `GEMINI_API_KEY` |
 * | deepseek | `DEEPSEEK_API_KEY` |
 * | xai | `XAI_API_KEY` |
 * | together | `TOGETHER_API_KEY` |
 * | fireworks | `FIREWORKS_API_KEY` |
 * | perplexity | `PERPLEXITY_API_KEY` |
 * | cohere | `CO_API_KEY` |
 *
 * @since 0.1.0
 */
export const providerEnvVars: Readonly<Record<string, string>> = {
  openai: "OPENAI_API_KEY",
  litellm: "LITELLM_API_KEY",
  anthropic: "ANTHROPIC_API_KEY",
  ollama: "OLLAMA_API_KEY",
  bedrock: "AWS_BEARER_TOKEN_BEDROCK",
  groq: "GROQ_API_KEY",
  mistral: "MISTRAL_API_KEY",
  openrouter: "OPENROUTER_API_KEY",
  gemini: "GEMINI_API_KEY",
  deepseek: "DEEPSEEK_API_KEY",
  xai: "XAI_API_KEY",
  together: "TOGETHER_API_KEY",
  fireworks: "FIREWORKS_API_KEY",
  perplexity: "PERPLEXITY_API_KEY",
  cohere: "CO_API_KEY"
}

/**
 * The environment variable holding a provider's API key: the `providerEnvVars` entry, else the
 * id uppercased (non-alphanumerics as `_`) followed by `_API_KEY`, e.g. `my-llm` → `MY_LLM_API_KEY`.
 *
 * @since 0.1.0
 */
export const providerEnvVar = (providerId: string): string =>
  Object.hasOwn(providerEnvVars, providerId.toLowerCase())
    ? providerEnvVars[providerId.toLowerCase()]!
    : `${providerId.toUpperCase().replace(/[^A-Z0-9]+/g, "_")}_API_KEY`

/**
 * The environment variable `layerEnv` reads a key from: a provider key `provider.<id>.apiKey`
 * maps to `providerEnvVar(id)`, any other name to its constant case
 * (`provider.bedrock.accessKeyId` → `PROVIDER_BEDROCK_ACCESS_KEY_ID`).
 *
 * @since 0.1.0
 */
export const envVarForKey = (key: string): string => {
  const providerId = Keys.providerIdOfKey(key)
  return providerId !== undefined ? providerEnvVar(providerId) : Keys.constantCase(key)
}

/** The environment variable `layerFile` reads its passphrase from. @since 0.1.0 */
export const passphraseEnvVar = "AGENT_KERNEL_SECRETS_PASSPHRASE"

/**
 * Reads an environment variable through `Config`; unset or blank is `None`.
 */
const readEnv = (name: string): Effect.Effect<Option.Option<Redacted.Redacted<string>>, SecretsError> =>
  Config.option(Config.redacted(name)).pipe(
    Effect.map(Option.filter((value) => Redacted.value(value).trim() !== "")),
    Effect.mapError((error) =>
      new SecretsError({
        reason: "Io",
        message: `Could not read the environment variable ${name}: ${String(error)}. Check the configuration provider.`
      })
    )
  )

const optionalString = (name: string): Effect.Effect<Option.Option<string>> =>
  Config.option(Config.string(name)).pipe(
    Effect.map(Option.filter((value) => value.trim() !== "")),
    Effect.orElseSucceed(() => Option.none())
  )

/** Options shared by the writable layers. @since 0.1.0 */
export interface EnvFallbackOptions {
  /** Whether `resolveProviderKey` falls back to `providerEnvVar(id)` (default `true`). */
  readonly envFallback?: boolean
}

const fromBackend = (
  backend: Backend,
  options: EnvFallbackOptions
): Effect.Effect<Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<SecretChange>(), PubSub.shutdown)

    // Reads run on every model request (the provider's key): their spans are made only for a
    // tracer that records them (see `internal/tracing.ts`); writes keep theirs.
    const retrieve = (key: string): Effect.Effect<Option.Option<Redacted.Redacted<string>>, SecretsError> =>
      Effect.flatMap(Keys.validateKey(key), () => Effect.map(backend.entries, (entries) => Option.fromNullable(entries.get(key))))
        .pipe(withSpan("SecretsManager.retrieve", { captureStackTrace: false, attributes: { key } }))

    const store = Effect.fn("SecretsManager.store")(function*(key: string, value: string | Redacted.Redacted<string>) {
      yield* Effect.annotateCurrentSpan("key", key)
      yield* Keys.validateKey(key)
      const secret = Redacted.isRedacted(value) ? value : Redacted.make(value)
      yield* Keys.validateValue(key, Redacted.value(secret))
      yield* backend.modify((current) => ({ result: undefined, next: new Map(current).set(key, secret) }))
      yield* PubSub.publish(pubsub, { key, op: "store" } satisfies SecretChange)
    })

    const remove = Effect.fn("SecretsManager.delete")(function*(key: string) {
      yield* Effect.annotateCurrentSpan("key", key)
      yield* Keys.validateKey(key)
      const existed = yield* backend.modify((current) => {
        if (!current.has(key)) return { result: false }
        const next = new Map(current)
        next.delete(key)
        return { result: true, next }
      })
      if (existed) yield* PubSub.publish(pubsub, { key, op: "delete" } satisfies SecretChange)
      return existed
    })

    const list = Effect.fn("SecretsManager.list")(function*(glob?: string) {
      const entries = yield* backend.entries
      return Keys.filterKeys(entries.keys(), glob)
    })

    const resolveProviderKey = (providerId: string): Effect.Effect<Option.Option<Redacted.Redacted<string>>, SecretsError> =>
      Effect.flatMap(Keys.validateProviderId(providerId), () =>
        Effect.flatMap(retrieve(buildProviderKeyName(providerId)), (stored) =>
          Option.isSome(stored) || options.envFallback === false
            ? Effect.succeed(stored)
            : readEnv(providerEnvVar(providerId)))).pipe(
          withSpan("SecretsManager.resolveProviderKey", { captureStackTrace: false, attributes: { providerId } })
        )

    return {
      store,
      retrieve,
      check: (key) => Effect.map(retrieve(key), Option.isSome),
      delete: remove,
      list: (glob) => list(glob),
      resolveProviderKey,
      changes: Stream.fromPubSub(pubsub)
    } satisfies Service
  })

/** Options of the in-memory store. @since 0.1.0 */
export interface MemoryOptions extends EnvFallbackOptions {
  /** Entries the store starts with. */
  readonly initial?: Readonly<Record<string, string | Redacted.Redacted<string>>>
}

/**
 * An in-memory store (lost when the scope closes), for tests and short-lived programs. Invalid
 * initial key names fail with `InvalidKey`.
 *
 * @since 0.1.0
 */
export const makeMemory = (options: MemoryOptions = {}): Effect.Effect<Service, SecretsError, Scope.Scope> =>
  Effect.gen(function*() {
    const initial = new Map<string, Redacted.Redacted<string>>()
    for (const [key, value] of Object.entries(options.initial ?? {})) {
      const secret = Redacted.isRedacted(value) ? value : Redacted.make(value)
      yield* Keys.validateKey(key)
      yield* Keys.validateValue(key, Redacted.value(secret))
      initial.set(key, secret)
    }
    return yield* fromBackend(yield* memoryBackend(initial), options)
  })

/** Options of the encrypted file store. @since 0.1.0 */
export interface FileOptions extends EnvFallbackOptions {
  /** The store file (default `defaultStorePath`). */
  readonly path?: string
  /**
   * Seals the store with a key derived from this passphrase (scrypt, random stored salt).
   * Without it, `AGENT_KERNEL_SECRETS_PASSPHRASE` is used; without that, a key file.
   */
  readonly passphrase?: Redacted.Redacted<string>
  /** The key file used when there is no passphrase (default: the store path plus `.key`). */
  readonly keyFile?: string
  /**
   * How long a write waits while another process writes the store (default 15 seconds) before
   * failing with `Io` naming the lock file and its holder.
   */
  readonly lockTimeout?: Duration.DurationInput
}

/**
 * The directory holding the kernel's files: `$XDG_CONFIG_HOME/effect-agent-kernel`, else
 * `~/.config/effect-agent-kernel` (`HOME`, else the OS home directory). A relative
 * `XDG_CONFIG_HOME` is ignored, as the XDG specification requires.
 *
 * @since 0.1.0
 */
export const defaultDirectory: Effect.Effect<string, never, Path.Path> = Effect.gen(function*() {
  const path = yield* Path.Path
  const xdg = Option.filter(yield* optionalString("XDG_CONFIG_HOME"), (dir) => path.isAbsolute(dir))
  if (Option.isSome(xdg)) return path.join(xdg.value, "effect-agent-kernel")
  const home = Option.getOrElse(yield* optionalString("HOME"), () => Os.homedir())
  return path.join(home, ".config", "effect-agent-kernel")
})

/** The default store file: `secrets.enc` in `defaultDirectory`. @since 0.1.0 */
export const defaultStorePath: Effect.Effect<string, never, Path.Path> = Effect.gen(function*() {
  const path = yield* Path.Path
  return path.join(yield* defaultDirectory, "secrets.enc")
})

/**
 * The encrypted file store. Each value is sealed with AES-256-GCM under a fresh random nonce,
 * key names are indexed by HMAC and sealed with their values, and a checksum covers the whole
 * file. Writes are atomic and serialized, within the process and across processes (a lock file
 * beside the store, `<path>.lock`; a holder that died, even by SIGKILL, is detected and does not
 * block others); the file is 0600 and a directory it creates 0700. A key file that is a symbolic
 * link, belongs to another user or is readable by others, and a directory other users can write,
 * are refused with `Io` saying what to fix. Opening a store with the wrong passphrase or key file
 * fails with `WrongKey`, a damaged one with `Corrupt`; neither ever touches the file. Nothing is
 * bound to the machine: the store and its key file (or passphrase) open anywhere.
 *
 * @since 0.1.0
 */
export const makeFile = (
  options: FileOptions = {}
): Effect.Effect<Service, SecretsError, FileSystem.FileSystem | Path.Path | Scope.Scope> =>
  Effect.gen(function*() {
    const path = options.path ?? (yield* defaultStorePath)
    const passphrase = options.passphrase !== undefined
      ? Option.some(options.passphrase)
      : yield* readEnv(passphraseEnvVar)
    const backend = yield* makeFileBackend({
      path,
      keyFile: options.keyFile ?? `${path}.key`,
      passphrase: Option.filter(passphrase, (secret) => Redacted.value(secret) !== ""),
      passphraseEnvVar,
      lock: { ...defaultLockOptions, ...(options.lockTimeout !== undefined ? { timeout: options.lockTimeout } : {}) }
    })
    return yield* fromBackend(backend, options)
  }).pipe(Effect.withSpan("SecretsManager.makeFile"))

const readOnly = (key: string): SecretsError =>
  new SecretsError({
    reason: "ReadOnly",
    key,
    message: `The environment secrets store is read-only, so ${JSON.stringify(key)} cannot be changed. Set the ` +
      `environment variable ${envVarForKey(key)} instead, or use SecretsManager.layerFile for a writable store.`
  })

/**
 * A read-only store over environment variables (through `Config`): `retrieve(key)` reads
 * `envVarForKey(key)`, blank counts as unset. `list` can only see provider keys of the
 * `providerEnvVars` table whose variable is set; `store` and `delete` fail with `ReadOnly`, and
 * `changes` never emits.
 *
 * @since 0.1.0
 */
export const makeEnv: Effect.Effect<Service> = Effect.sync(() => {
  const retrieve = (key: string): Effect.Effect<Option.Option<Redacted.Redacted<string>>, SecretsError> =>
    Effect.flatMap(Keys.validateKey(key), () => readEnv(envVarForKey(key)))
      .pipe(withSpan("SecretsManager.retrieve", { captureStackTrace: false, attributes: { key } }))
  const list = Effect.fn("SecretsManager.list")(function*(glob?: string) {
    const keys = Object.keys(providerEnvVars).map(buildProviderKeyName)
    const present = yield* Effect.filter(keys, (key) => Effect.map(retrieve(key), Option.isSome))
    return Keys.filterKeys(present, glob)
  })
  const resolveProviderKey = (providerId: string): Effect.Effect<Option.Option<Redacted.Redacted<string>>, SecretsError> =>
    Effect.flatMap(Keys.validateProviderId(providerId), () => retrieve(buildProviderKeyName(providerId)))
      .pipe(withSpan("SecretsManager.resolveProviderKey", { captureStackTrace: false, attributes: { providerId } }))
  return {
    store: (key) => Effect.fail(readOnly(key)),
    retrieve,
    check: (key) => Effect.map(retrieve(key), Option.isSome),
    delete: (key) => Effect.fail(readOnly(key)),
    list: (glob) => list(glob),
    resolveProviderKey,
    changes: Stream.never
  } satisfies Service
})

/** An empty in-memory store, with the environment fallback. @since 0.1.0 */
export const layerMemory: Layer.Layer<SecretsManager> = Layer.scoped(SecretsManager, Effect.orDie(makeMemory()))

/**
 * An in-memory store with initial entries and/or without the environment fallback (for tests
 * that must not see the machine's environment).
 *
 * @since 0.1.0
 */
export const layerMemoryWith = (options: MemoryOptions): Layer.Layer<SecretsManager, SecretsError> =>
  Layer.scoped(SecretsManager, makeMemory(options))

/** The encrypted file store (see `makeFile`). @since 0.1.0 */
export const layerFile = (
  options: FileOptions = {}
): Layer.Layer<SecretsManager, SecretsError, FileSystem.FileSystem | Path.Path> =>
  Layer.scoped(SecretsManager, makeFile(options))

/** The read-only environment store (see `makeEnv`). @since 0.1.0 */
export const layerEnv: Layer.Layer<SecretsManager> = Layer.effect(SecretsManager, makeEnv)

/**
 * The default store: the encrypted file at `defaultStorePath`, with provider keys falling back
 * to the environment.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<SecretsManager, SecretsError, FileSystem.FileSystem | Path.Path> = layerFile()
