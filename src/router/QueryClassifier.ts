/**
 * Sorts a request into a routing tier (`simple | moderate | complex | reasoning`) from its text:
 * `classifyQuery` is the pure core, the `QueryClassifier` service scores the latest user message
 * of a conversation with a little context. Both explain themselves through `signals`, short names
 * of what matched ("proof:prove", "code-block", "long-input") shown in `route-selected` events.
 *
 * Settings live under the config key `routing.classifier`:
 *
 * ```json
 * { "weights": { "<signal>": 2.5 }, "thresholds": { "moderate": 1, "complex": 3.5, "reasoning": 4 } }
 * ```
 *
 * Every field is optional and merges over the defaults (`defaultWeights`, `defaultThresholds`);
 * `signalNames` lists the weight keys. The total score picks `simple`, `moderate` or `complex`
 * against `thresholds.moderate` and `thresholds.complex`; the part of the score that comes from
 * reasoning signals (proof, step-by-step, math, puzzle, calculation, math-notation, word-problem)
 * picks `reasoning` when it reaches `thresholds.reasoning`, whatever the total.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SynchronizedRef from "effect/SynchronizedRef"
import { ConfigManager } from "../config/ConfigManager.js"
import { keysOverlap } from "../config/KernelConfig.js"
import { ConfigError } from "../domain/Errors.js"
import type { Message } from "../domain/Message.js"
import * as internal from "./internal/classifier.js"
import * as lexicon from "./internal/classifierLexicon.js"

/**
 * A classification: the tier, the score it came from, a confidence in `[0.5, 1]` (0.5 on a
 * threshold, 1 far from any; both rounded to two decimals), and the signals that contributed, in
 * a stable order.
 *
 * @since 0.1.0
 */
export type Classification = internal.Classification

/** Every weight key the settings accept. @since 0.1.0 */
export const signalNames: ReadonlyArray<string> = internal.signalNames

/** The weights used when settings do not override them. @since 0.1.0 */
export const defaultWeights: Readonly<Record<string, number>> = lexicon.defaultWeights

/**
 * Score thresholds: `moderate` and `complex` apply to the total score, `reasoning` to the part of
 * it that comes from reasoning signals.
 *
 * @since 0.1.0
 */
export type Thresholds = internal.Thresholds

/** The thresholds used when settings do not override them. @since 0.1.0 */
export const defaultThresholds: Thresholds = lexicon.defaultThresholds

/** The config key the `layerConfig` layer reads and follows. @since 0.1.0 */
export const configKey = "routing.classifier"

const knownSignals = new Set(signalNames)
const Weight = Schema.Number.pipe(Schema.finite(), Schema.between(-100, 100))
const Weights = Schema.Record({ key: Schema.String, value: Weight }).pipe(
  Schema.filter((weights) => {
    const unknown = Object.keys(weights).filter((name) => !knownSignals.has(name))
    return unknown.length === 0 ||
      `unknown signal ${unknown.map((name) => `"${name}"`).join(", ")}; known: ${signalNames.join(", ")}`
  })
)

/**
 * Classifier settings as stored under `routing.classifier`. Decoding rejects unknown keys and
 * unknown signal names, so a typo fails loudly instead of silently doing nothing.
 *
 * @since 0.1.0
 */
export const ClassifierSettings = Schema.Struct({
  weights: Schema.optional(Weights),
  thresholds: Schema.optional(
    Schema.Struct({
      moderate: Schema.optional(Schema.Number.pipe(Schema.finite())),
      complex: Schema.optional(Schema.Number.pipe(Schema.finite())),
      reasoning: Schema.optional(Schema.Number.pipe(Schema.finite()))
    })
  )
})
export type ClassifierSettings = typeof ClassifierSettings.Type

const decodeStrict = Schema.decodeUnknownEither(ClassifierSettings, { onExcessProperty: "error", errors: "all" })

const invalid = (message: string) =>
  new ConfigError({ reason: "InvalidValue", key: configKey, message: `Invalid ${configKey}: ${message}` })

const compileEither = (settings: ClassifierSettings): Either.Either<internal.Compiled, ConfigError> => {
  const compiled = internal.compile(settings.weights, settings.thresholds)
  return typeof compiled === "string" ? Either.left(invalid(compiled)) : Either.right(compiled)
}

const decodeEither = (raw: unknown): Either.Either<ClassifierSettings, ConfigError> =>
  Either.mapLeft(decodeStrict(raw), (error) => invalid(ParseResult.TreeFormatter.formatErrorSync(error)))

const decodeAndCompile = (raw: unknown): Either.Either<internal.Compiled, ConfigError> =>
  Either.flatMap(decodeEither(raw), compileEither)

/**
 * Decodes and checks raw settings (for example a value read from config): the shape, the signal
 * names, and that `thresholds.moderate` stays below `thresholds.complex` once merged with the
 * defaults.
 *
 * @since 0.1.0
 */
export const decodeSettings = (raw: unknown): Effect.Effect<ClassifierSettings, ConfigError> =>
  Either.flatMap(decodeEither(raw), (settings) => Either.map(compileEither(settings), () => settings))

// Settings compile once per settings object; callers usually pass the same object every time.
const compiledCache = new WeakMap<ClassifierSettings, internal.Compiled>()
const compiledFor = (settings: ClassifierSettings | undefined): internal.Compiled => {
  if (settings === undefined) return internal.defaultCompiled
  let compiled = compiledCache.get(settings)
  if (compiled === undefined) {
    const result = compileEither(settings)
    if (Either.isLeft(result)) throw new RangeError(result.left.message)
    compiled = result.right
    compiledCache.set(settings, compiled)
  }
  return compiled
}

/**
 * Classifies one text. Pure and synchronous; cheap enough to call on every request (about a
 * microsecond for a typical prompt). Throws a `RangeError` only for settings whose merged
 * thresholds are inconsistent — settings that passed `decodeSettings` never are.
 *
 * @example
 * ```ts
 * classifyQuery("What's the capital of France?").tier // "simple"
 * classifyQuery("Prove that there are infinitely many primes.").tier // "reasoning"
 * ```
 *
 * @since 0.1.0
 */
export const classifyQuery = (text: string, settings?: ClassifierSettings): Classification =>
  internal.classifyCompiled(text, compiledFor(settings))

/** How many recent messages, besides the latest user message, are looked at for code. */
const recentWindow = 6

const classifyWith = (messages: ReadonlyArray<Message>, compiled: internal.Compiled): Classification => {
  let latestUser = -1
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]!.role === "user") {
      latestUser = i
      break
    }
  }
  let trailingToolResults = 0
  for (let i = messages.length - 1; i > latestUser && messages[i]!.role === "tool"; i--) trailingToolResults++
  let conversationLength = 0
  for (const message of messages) if (message.role !== "system") conversationLength++
  let recentCode = false
  let looked = 0
  for (let i = messages.length - 1; i >= 0 && looked < recentWindow && !recentCode; i--) {
    const message = messages[i]!
    if (message.role === "system" || i === latestUser) continue
    looked++
    recentCode = internal.textOf(message).includes("```")
  }
  const text = latestUser >= 0 ? internal.textOf(messages[latestUser]!) : ""
  return internal.classifyCompiled(text, compiled, { trailingToolResults, conversationLength, recentCode })
}

/**
 * Classifies a conversation: the latest user message, plus context. System prompts are never
 * read. Context adds, once each:
 * - `tool-results` when the conversation ends in tool messages (the model must read and combine
 *   them): default weight 1, about one step at the low end, so a tool loop is not routed below
 *   what reading its results needs without turning every tool call into a complex request;
 * - `long-conversation` from 10 user, assistant and tool messages on (default 0.75);
 * - `recent-code` when one of the last 6 messages other than the latest user message (system
 *   prompts aside) holds a code block and the latest does not ("why does it fail?" about pasted
 *   code is a code question; default 1.5).
 *
 * @since 0.1.0
 */
export const classifyMessages = (messages: ReadonlyArray<Message>, settings?: ClassifierSettings): Classification =>
  classifyWith(messages, compiledFor(settings))

/** @since 0.1.0 */
export interface Service {
  /** Classifies the latest user message of `messages`, with the context `classifyMessages` uses. */
  readonly classify: (messages: ReadonlyArray<Message>) => Effect.Effect<Classification>
}

/** @since 0.1.0 */
export class QueryClassifier extends Context.Tag("effect-agent-kernel/QueryClassifier")<QueryClassifier, Service>() {}

const fromCompiled = (current: Effect.Effect<internal.Compiled>): Service => ({
  // Runs on every routed request; the router's span covers it.
  classify: (messages: ReadonlyArray<Message>) => Effect.map(current, (compiled) => classifyWith(messages, compiled))
})

/**
 * Builds a classifier with fixed settings (the defaults when none are given); fails with a
 * `ConfigError` when the settings are invalid.
 *
 * @since 0.1.0
 */
export const make = (settings?: ClassifierSettings): Effect.Effect<Service, ConfigError> =>
  settings === undefined
    ? Effect.succeed(fromCompiled(Effect.succeed(internal.defaultCompiled)))
    : Effect.map(decodeAndCompile(settings), (compiled) => fromCompiled(Effect.succeed(compiled)))

const fingerprint = (raw: Option.Option<unknown>): string => Option.isNone(raw) ? "" : JSON.stringify(raw.value)

/**
 * Builds a classifier that reads `routing.classifier` from the `ConfigManager` and keeps
 * following it, so new weights and thresholds apply to the next request without a restart.
 *
 * Invalid settings: at construction they fail with a `ConfigError` (the operator learns at
 * start-up); when they become invalid later (a hand-edited file, an open JSON value the config
 * schema does not check), a warning is logged once per distinct value and the last valid
 * settings stay in force, because a typo must not take routing down mid-run.
 *
 * Each request re-reads the key and recompiles only when its value changed, so "the next
 * request" holds even before the `changes` subscription has delivered; the subscription makes
 * the warning about an invalid edit appear when it is made, not at the next request.
 *
 * @since 0.1.0
 */
export const makeFromConfig: Effect.Effect<Service, ConfigError, ConfigManager | Scope.Scope> = Effect.gen(
  function*() {
    const config = yield* ConfigManager
    const initial = yield* config.get(configKey)
    const compiled = Option.isNone(initial) ? internal.defaultCompiled : yield* decodeAndCompile(initial.value)
    const state = yield* SynchronizedRef.make({ fingerprint: fingerprint(initial), compiled })
    const current = SynchronizedRef.modifyEffect(state, (previous) =>
      Effect.gen(function*() {
        const raw = yield* config.get(configKey)
        const seen = fingerprint(raw)
        if (seen === previous.fingerprint) return [previous.compiled, previous] as const
        const next = Option.isNone(raw) ? Either.right(internal.defaultCompiled) : decodeAndCompile(raw.value)
        if (Either.isRight(next)) return [next.right, { fingerprint: seen, compiled: next.right }] as const
        yield* Effect.logWarning(`${next.left.message}; keeping the previous classifier settings`)
        return [previous.compiled, { fingerprint: seen, compiled: previous.compiled }] as const
      })
    )
    yield* config.changes.pipe(
      Stream.filter((change) => keysOverlap(change.key, configKey)),
      Stream.runForEach(() => current),
      Effect.forkScoped
    )
    return fromCompiled(current)
  }
)

/** The classifier with default settings. @since 0.1.0 */
export const layer: Layer.Layer<QueryClassifier> = Layer.succeed(
  QueryClassifier,
  fromCompiled(Effect.succeed(internal.defaultCompiled))
)

/** The classifier with fixed settings; fails with a `ConfigError` when they are invalid. @since 0.1.0 */
export const layerWith = (settings: ClassifierSettings): Layer.Layer<QueryClassifier, ConfigError> =>
  Layer.effect(QueryClassifier, make(settings))

/** The classifier driven by `routing.classifier` in the `ConfigManager` (see `makeFromConfig`). @since 0.1.0 */
export const layerConfig: Layer.Layer<QueryClassifier, ConfigError, ConfigManager> = Layer.scoped(
  QueryClassifier,
  makeFromConfig
)
