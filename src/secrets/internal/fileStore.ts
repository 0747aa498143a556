/**
 * The encrypted file storage behind `SecretsManager.layerFile`: key material (passphrase or key
 * file), loading with precise errors, and serialized atomic writes.
 *
 * Every operation first re-reads the file and reloads it when its bytes changed, so a key
 * stored by another process (a pairing script, say) is seen. Every write holds the store's
 * cross-process lock (`internal/fileLock.ts`) from that re-read until the new file has replaced
 * the old, so two processes writing at once never drop each other's keys; reads take no lock,
 * since a file is only ever replaced whole.
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import { SecretsError } from "../../domain/Errors.js"
import { writeFileAtomic } from "../../internal/atomicFile.js"
import * as FileLock from "../../internal/fileLock.js"
import type { Backend, Change, Entries } from "./backend.js"
import { checkPrivateDirectory, readTrustedKeyFile } from "./keyFile.js"
import * as Sealed from "./sealedFile.js"

/** Where the store lives and how it is unlocked. */
export interface FileStoreOptions {
  readonly path: string
  readonly keyFile: string
  readonly passphrase: Option.Option<Redacted.Redacted<string>>
  /** The environment variable a user sets for the passphrase, named in error messages. */
  readonly passphraseEnvVar: string
  readonly lock: FileLock.LockOptions
}

interface PendingChange {
  readonly change: (current: Entries) => Change<unknown>
  readonly done: Deferred.Deferred<unknown, SecretsError>
}

interface State {
  readonly header: Sealed.Header
  /** `None` only for a key-file store whose key file is not created yet. */
  readonly master: Option.Option<Uint8Array>
  readonly entries: Entries
  /** The file's bytes as last read or written; `undefined` when there is no file. */
  readonly bytes: Uint8Array | undefined
}

const untouched = "The file was left untouched."

const ioError = (path: string, action: string, error: PlatformError): SecretsError =>
  new SecretsError({
    reason: "Io",
    path,
    message: `Could not ${action} ${path}: ${error.message}. Check that the path is correct and that this user ` +
      "may read and write it."
  })

const isNotFound = (error: PlatformError): boolean => error._tag === "SystemError" && error.reason === "NotFound"

const sameBytes = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean =>
  a === undefined || b === undefined ? a === b : Buffer.from(a).equals(Buffer.from(b))

/** Builds the file backend, failing with `WrongKey`/`Corrupt`/`Io` when the existing store cannot be opened. */
export const makeFileBackend = (
  options: FileStoreOptions
): Effect.Effect<Backend, SecretsError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const pathApi = yield* Path.Path
    const { keyFile, passphrase, path } = options
    const context = yield* Effect.context<FileSystem.FileSystem | Path.Path>()

    const corrupt = (file: string, detail: string) =>
      new SecretsError({
        reason: "Corrupt",
        path: file,
        message: `The secrets store ${file} is damaged: ${detail}. ${untouched} Restore it from a backup, or move it ` +
          "away to start a new, empty store."
      })
    const wrongKey = (message: string) => new SecretsError({ reason: "WrongKey", path, message })

    const readOptional = (file: string) =>
      fs.readFile(file).pipe(
        Effect.map(Option.some),
        Effect.catchIf(isNotFound, () => Effect.succeed(Option.none<Uint8Array>())),
        Effect.mapError((error) => ioError(file, "read", error))
      )

    const readKeyFile = readTrustedKeyFile(keyFile, path)

    // Exclusive creation: two processes creating a store at once must agree on one key, so the
    // loser of the race adopts the winner's file instead of replacing it.
    const createKeyFile: Effect.Effect<Uint8Array, SecretsError> = Effect.gen(function*() {
      const key = Sealed.freshKeyFileKey()
      const created = yield* Effect.scoped(Effect.gen(function*() {
        yield* fs.makeDirectory(pathApi.dirname(keyFile), { recursive: true, mode: 0o700 })
        const handle = yield* fs.open(keyFile, { flag: "wx", mode: 0o600 })
        yield* handle.writeAll(key)
        yield* handle.sync
        return true
      })).pipe(
        Effect.catchIf((error) => error._tag === "SystemError" && error.reason === "AlreadyExists", () => Effect.succeed(false)),
        Effect.mapError((error) => ioError(keyFile, "create the key file", error))
      )
      if (created) return key
      const existing = yield* readKeyFile
      if (Option.isSome(existing)) return existing.value
      return yield* Effect.fail(
        new SecretsError({
          reason: "Io",
          path: keyFile,
          message: `The key file ${keyFile} was removed while it was being created; try again.`
        })
      )
    })

    // scrypt is deliberately slow, so its result is kept per salt and cost.
    const derived = new Map<string, Uint8Array>()
    const passphraseMaster = (secret: Redacted.Redacted<string>, header: Sealed.Header) => {
      const cacheKey = `${Buffer.from(header.salt).toString("hex")}:${header.logN}:${header.r}:${header.p}`
      const cached = derived.get(cacheKey)
      if (cached !== undefined) return Effect.succeed(cached)
      return Sealed.masterFromPassphrase(secret, header).pipe(Effect.tap((master) => derived.set(cacheKey, master)))
    }

    const masterFor = (header: Sealed.Header): Effect.Effect<Uint8Array, SecretsError> => {
      if (header.kdf === "scrypt") {
        return Option.match(passphrase, {
          onNone: () =>
            Effect.fail(wrongKey(
              `The secrets store ${path} is sealed with a passphrase, but none was given. Set ` +
                `${options.passphraseEnvVar} or pass the passphrase option. ${untouched}`
            )),
          onSome: (secret) => passphraseMaster(secret, header)
        })
      }
      if (Option.isSome(passphrase)) {
        return Effect.fail(wrongKey(
          `The secrets store ${path} is sealed with the key file ${keyFile}, not a passphrase. Unset ` +
            `${options.passphraseEnvVar} and the passphrase option to open it with the key file. ${untouched}`
        ))
      }
      return readKeyFile.pipe(Effect.flatMap(Option.match({
        onNone: () =>
          Effect.fail(wrongKey(
            `The secrets store ${path} is sealed with the key file ${keyFile}, which does not exist. Restore ` +
              `that key file (it must travel with the store); without it the store cannot be read. To start ` +
              `over, move ${path} away. ${untouched}`
          )),
        onSome: (key) => Effect.succeed(key)
      })))
    }

    const wrongKeyMessage = (header: Sealed.Header) =>
      header.kdf === "scrypt"
        ? `Cannot unlock the secrets store ${path}: the passphrase is wrong. Supply the passphrase the store was ` +
          `created with (the passphrase option or ${options.passphraseEnvVar}). ${untouched}`
        : `The key file ${keyFile} does not unlock the secrets store ${path}. Restore the key file that was ` +
          `created with this store, or move the store away to start over. ${untouched}`

    const openBytes = (bytes: Uint8Array): Effect.Effect<State, SecretsError> =>
      Effect.gen(function*() {
        const parsed = Sealed.parseFile(bytes)
        if (Either.isLeft(parsed)) return yield* Effect.fail(corrupt(path, parsed.left))
        const file = parsed.right
        const master = yield* masterFor(file.header)
        const opened = Sealed.openFile(file, master)
        if (Either.isLeft(opened)) {
          const problem = opened.left
          return yield* Effect.fail(
            problem._tag === "WrongKey" ? wrongKey(wrongKeyMessage(file.header)) : corrupt(path, problem.detail)
          )
        }
        return { header: file.header, master: Option.some(master), entries: opened.right, bytes }
      })

    const emptyState = (previous: State | undefined): Effect.Effect<State, SecretsError> => {
      if (previous !== undefined) return Effect.succeed({ ...previous, entries: new Map(), bytes: undefined })
      return Option.match(passphrase, {
        onSome: (secret) => {
          const header = Sealed.freshHeader("scrypt")
          return passphraseMaster(secret, header).pipe(
            Effect.map((master): State => ({ header, master: Option.some(master), entries: new Map(), bytes: undefined }))
          )
        },
        onNone: () => {
          const header = Sealed.freshHeader("keyFile")
          return readKeyFile.pipe(Effect.map((master): State => ({ header, master, entries: new Map(), bytes: undefined })))
        }
      })
    }

    const load = (previous: State | undefined): Effect.Effect<State, SecretsError> =>
      readOptional(path).pipe(Effect.flatMap(Option.match({
        onNone: () => previous !== undefined && previous.bytes === undefined ? Effect.succeed(previous) : emptyState(previous),
        onSome: (bytes) =>
          previous !== undefined && sameBytes(previous.bytes, bytes) ? Effect.succeed(previous) : openBytes(bytes)
      })))

    const storeDirectory = pathApi.dirname(path)
    for (const directory of new Set([storeDirectory, pathApi.dirname(keyFile)])) {
      yield* checkPrivateDirectory(directory, directory === storeDirectory ? `the secrets store ${path}` : `the key file ${keyFile}`)
    }
    let state = yield* load(undefined)
    const permit = yield* Effect.makeSemaphore(1)

    const refresh = permit.withPermits(1)(
      Effect.suspend(() => load(state)).pipe(Effect.tap((next) => {
        state = next
      }))
    )

    const ensureMaster = (current: State): Effect.Effect<Uint8Array, SecretsError> =>
      Option.match(current.master, { onSome: Effect.succeed, onNone: () => createKeyFile })

    // Group commit: changes queue up while a write is in flight, and the next writer applies the
    // whole queue with one file write, so many concurrent stores cost a few fsyncs, not one each.
    const pending: Array<PendingChange> = []

    const lockFailure = (error: FileLock.FileLockError) => new SecretsError({ reason: "Io", path, message: error.message })

    const commit = (batch: ReadonlyArray<PendingChange>) =>
      FileLock.withFileLock(path, options.lock, (held) =>
        Effect.gen(function*() {
          const current = yield* load(state)
          state = current
          let entries = current.entries
          let changed = false
          const results = batch.map(({ change }) => {
            const { next, result } = change(entries)
            if (next !== undefined) {
              entries = next
              changed = true
            }
            return result
          })
          if (!changed) return results
          const master = yield* ensureMaster(current)
          const bytes = Sealed.encodeFile(current.header, master, entries)
          yield* writeFileAtomic(path, bytes, { mode: 0o600, dirMode: 0o700, beforeReplace: held.ensureHeld }).pipe(
            Effect.provide(context),
            Effect.mapError((error) => error._tag === "FileLockLost" ? lockFailure(error) : ioError(path, "write", error))
          )
          state = { header: current.header, master: Option.some(master), entries, bytes }
          return results
        })).pipe(
          Effect.provide(context),
          Effect.mapError((error) =>
            error._tag === "SecretsError"
              ? error
              : error._tag === "FileLockTimeout"
              ? lockFailure(error)
              : ioError(FileLock.lockPathFor(path), "lock", error)
          ),
          Effect.exit,
          Effect.flatMap((exit) =>
            Effect.forEach(batch, ({ done }, i) => Deferred.done(done, Exit.map(exit, (results) => results[i])))
          )
        )

    const modify: Backend["modify"] = <A>(change: (current: Entries) => Change<A>) =>
      Effect.gen(function*() {
        const done = yield* Deferred.make<unknown, SecretsError>()
        const item: PendingChange = { change, done }
        pending.push(item)
        yield* permit.withPermits(1)(
          // Uninterruptible: the batch may hold other fibers' changes, which must all be answered (so the
          // wait for another process's lock is bounded by lockTimeout, not by interruption).
          Effect.uninterruptible(Effect.suspend(() => pending.length === 0 ? Effect.void : commit(pending.splice(0))))
        ).pipe(Effect.onInterrupt(() =>
          Effect.sync(() => {
            const index = pending.indexOf(item)
            if (index >= 0) pending.splice(index, 1)
          })
        ))
        return (yield* Deferred.await(done)) as A
      })

    return {
      entries: Effect.map(refresh, (current) => current.entries),
      modify
    }
  })
