/**
 * The one implementation behind every ConfigManager layer: a document in a Ref, edits applied as
 * "edit, validate the whole result, persist, publish" under a single permit, and an optional
 * persistence that can also bring in edits made outside the process.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { ConfigError } from "../../domain/Errors.js"
import type { ConfigChange, Service } from "../ConfigManager.js"
import * as KernelConfig from "../KernelConfig.js"
import * as ConfigView from "./configProvider.js"
import { copyJson, deleteIn, diffLeaves, type Document, getIn, setIn } from "./document.js"

/** A stored document with the defaults-filled view derived from it. @internal */
export interface Loaded {
  readonly stored: Document
  readonly effective: Document
}

/**
 * Where a document lives besides memory. `readChanged` returns the outside document when it
 * differs from what was last read or written (failing when it is invalid). `exclusive` runs an
 * edit that no other process's edit can interleave with; the edit re-reads through
 * `readChanged` and replaces the document with the `write` it is given (`key` names the change
 * in errors).
 *
 * @internal
 */
export interface Persistence {
  readonly readChanged: Effect.Effect<Option.Option<Loaded>, ConfigError>
  readonly exclusive: <A>(
    edit: (write: (document: Document, key: string) => Effect.Effect<void, ConfigError>) => Effect.Effect<A, ConfigError>
  ) => Effect.Effect<A, ConfigError>
}

/** Validates a document, naming its origin in the error. @internal */
export const load = (
  document: unknown,
  onInvalid: (problems: string) => ConfigError
): Either.Either<Loaded, ConfigError> =>
  Either.mapBoth(KernelConfig.validate(document), {
    onLeft: onInvalid,
    onRight: (effective) => ({ stored: document as Document, effective })
  })

const invalidValue = (key: string, message: string) => new ConfigError({ reason: "InvalidValue", key, message })

const parseKey = (key: string) =>
  Either.mapLeft(KernelConfig.parseKey(key), (problem) => invalidValue(key, `${problem}.`))

/**
 * Builds the service over `initial`. `refresh` brings in outside edits (for a file watcher); it
 * takes the same permit as edits, so an outside edit and a programmatic one never interleave.
 *
 * @internal
 */
export const make = (
  initial: Loaded,
  persistence: Option.Option<Persistence>
): Effect.Effect<{ readonly service: Service; readonly refresh: Effect.Effect<void, ConfigError> }, never, Scope.Scope> =>
  Effect.gen(function*() {
    const state = yield* Ref.make(initial)
    const permit = yield* Effect.makeSemaphore(1)
    const hub = yield* Effect.acquireRelease(PubSub.unbounded<ConfigChange>(), PubSub.shutdown)

    const absorbOutsideEdits = Option.match(persistence, {
      onNone: () => Effect.void,
      onSome: (outside) =>
        Effect.flatMap(outside.readChanged, (changed) =>
          Option.match(changed, {
            onNone: () => Effect.void,
            onSome: (next) =>
              Effect.flatMap(Ref.getAndSet(state, next), (before) =>
                PubSub.publishAll(hub, diffLeaves(before.stored, next.stored)))
          }))
    })

    const apply = (
      key: string,
      edit: (stored: Document) => Either.Either<Option.Option<Document>, string>,
      change: ConfigChange,
      write: (document: Document, key: string) => Effect.Effect<void, ConfigError>
    ) =>
      Effect.gen(function*() {
        yield* absorbOutsideEdits
        const { stored } = yield* Ref.get(state)
        const edited = edit(stored)
        if (Either.isLeft(edited)) {
          return yield* invalidValue(key, `Cannot change "${key}": ${edited.left}. Nothing was changed.`)
        }
        if (Option.isNone(edited.right)) return
        const next = yield* load(edited.right.value, (problems) =>
          invalidValue(
            key,
            `Cannot change "${key}": ${problems}. Nothing was changed; fix the value (the known keys and their types are listed in KernelConfig).`
          ))
        // Once the file is being replaced, memory and subscribers must follow it even if the caller
        // is interrupted.
        yield* Effect.uninterruptible(
          Effect.zipRight(write(next.stored, key), Effect.zipRight(Ref.set(state, next), PubSub.publish(hub, change)))
        )
      })

    // The outside re-read, the edit and the write run under one permit in this process and, for a
    // file, under its cross-process lock, so no edit made elsewhere is lost between them.
    const commit = (
      key: string,
      edit: (stored: Document) => Either.Either<Option.Option<Document>, string>,
      change: ConfigChange
    ) =>
      permit.withPermits(1)(Option.match(persistence, {
        onNone: () => apply(key, edit, change, () => Effect.void),
        onSome: (outside) => outside.exclusive((write) => apply(key, edit, change, write))
      }))

    const service: Service = {
      // Reads are in-memory lookups made on hot paths (every routed request reads its tier
      // mapping): no span of their own, unlike the writes.
      get: (key: string) => {
        const segments = KernelConfig.parseKey(key)
        if (Either.isLeft(segments)) return Effect.succeed(Option.none())
        return Effect.map(Ref.get(state), ({ effective }) => Option.map(getIn(effective, segments.right), structuredClone))
      },
      getAs: <A, I>(key: string, schema: Schema.Schema<A, I, never>) =>
        Effect.gen(function*() {
          const segments = yield* parseKey(key)
          const { effective } = yield* Ref.get(state)
          const value = getIn(effective, segments)
          if (Option.isNone(value)) return Option.none<A>()
          const decoded = yield* Schema.decodeUnknown(schema)(structuredClone(value.value)).pipe(
            Effect.mapError((error) =>
              invalidValue(key, `The value at "${key}" does not have the expected shape: ${KernelConfig.formatParseError(error)}.`)
            )
          )
          return Option.some(decoded)
        }).pipe(Effect.withSpan("ConfigManager.getAs", { attributes: { key } })),
      set: Effect.fn("ConfigManager.set")(function*(key: string, value: unknown) {
        const segments = yield* parseKey(key)
        const copy = yield* Either.mapLeft(
          copyJson(value),
          (problem) =>
            invalidValue(key, `Cannot set "${key}": ${problem}. Values must be JSON; use delete to remove a key.`)
        )
        yield* commit(key, (stored) => Either.map(setIn(stored, segments, copy), Option.some), {
          key,
          value: Option.some(structuredClone(copy))
        })
      }),
      delete: Effect.fn("ConfigManager.delete")(function*(key: string) {
        const segments = yield* parseKey(key)
        yield* commit(key, (stored) => Either.right(deleteIn(stored, segments)), { key, value: Option.none() })
      }),
      has: (key: string) => {
        const segments = KernelConfig.parseKey(key)
        if (Either.isLeft(segments)) return Effect.succeed(false)
        return Effect.map(Ref.get(state), ({ stored }) => Option.isSome(getIn(stored, segments.right)))
      },
      snapshot: Effect.map(Ref.get(state), ({ stored }) => structuredClone(stored) as Record<string, unknown>).pipe(
        Effect.withSpan("ConfigManager.snapshot")
      ),
      changes: Stream.fromPubSub(hub),
      subscribe: PubSub.subscribe(hub),
      configProvider: ConfigView.make(Effect.map(Ref.get(state), ({ effective }) => effective))
    }

    return { service, refresh: permit.withPermits(1)(absorbOutsideEdits) }
  })
