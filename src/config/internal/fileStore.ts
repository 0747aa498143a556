/**
 * The JSON file behind `ConfigManager.layerFile`: where it lives, how it is read and checked,
 * how it is replaced, and how hand edits are noticed.
 *
 * Every change re-reads, re-validates and rewrites the whole file, so the file has a size cap
 * (`maxFileBytes`): a file over it is refused when read, and a change that would take it over is
 * refused before anything is written, instead of every change slowing down with the file. Each
 * change holds the file's cross-process lock (`internal/fileLock.ts`) from its re-read to its
 * rename, so two processes changing the file at once never drop each other's keys; plain reads
 * and the watcher take no lock, since the file is only ever replaced whole.
 *
 * @internal
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as os from "node:os"
import { ConfigError } from "../../domain/Errors.js"
import { writeFileAtomic } from "../../internal/atomicFile.js"
import * as FileLock from "../../internal/fileLock.js"
import { type Document, isJsonObject } from "./document.js"
import { load, type Loaded, type Persistence } from "./store.js"

const fileMode = 0o600
const directoryMode = 0o700

/** The default `maxFileBytes`: far above any real configuration, far below a slow one. @internal */
export const defaultMaxFileBytes = 4 * 1024 * 1024

/** How the file is opened. @internal */
export interface FileStoreOptions {
  readonly maxFileBytes: number
  readonly lock: FileLock.LockOptions
}

/**
 * `$XDG_CONFIG_HOME/effect-agent-kernel/config.json`, else `~/.config/effect-agent-kernel/config.json`.
 * A relative `XDG_CONFIG_HOME` is ignored, as the XDG specification asks.
 *
 * @internal
 */
export const defaultPath: Effect.Effect<string, never, Path.Path> = Effect.gen(function*() {
  const path = yield* Path.Path
  const read = (name: string) =>
    Config.option(Config.nonEmptyString(name)).pipe(Effect.orElseSucceed(() => Option.none<string>()))
  const xdg = Option.filter(yield* read("XDG_CONFIG_HOME"), (dir) => path.isAbsolute(dir))
  const base = Option.isSome(xdg)
    ? xdg.value
    : path.join(Option.getOrElse(yield* read("HOME"), () => os.homedir()), ".config")
  return path.join(base, "effect-agent-kernel", "config.json")
})

const corrupt = (path: string, problem: string) =>
  new ConfigError({
    reason: "Corrupt",
    path,
    message:
      `The configuration file ${path} ${problem}. The file was left unchanged and nothing was written to it: ` +
      `fix it by hand, or move it away to start from an empty configuration.`
  })

const io = (path: string, action: string, cause: unknown) =>
  new ConfigError({
    reason: "Io",
    path,
    message: `Could not ${action} the configuration file ${path} (${String(cause)}). Check that the path and its directory are accessible.`
  })

// V8 quotes part of the text in its JSON errors; a config file may hold values nobody wants in a
// log line, so only the position-bearing part of the message is kept.
const jsonProblem = (error: unknown): string =>
  String(error instanceof Error ? error.message : error).replace(/,?\s*".*" is not valid JSON$/s, "").trim()

/** Parses and validates the file's text; `null` text means the file does not exist. @internal */
export const parse = (path: string, text: string | null): Either.Either<Loaded, ConfigError> => {
  if (text === null) return load({}, (problems) => corrupt(path, `does not match the configuration schema: ${problems}`))
  let document: unknown
  try {
    document = JSON.parse(text)
  } catch (error) {
    return Either.left(corrupt(path, `is not valid JSON (${jsonProblem(error)})`))
  }
  if (!isJsonObject(document)) {
    return Either.left(corrupt(path, "must hold a JSON object at the top level"))
  }
  return load(document, (problems) => corrupt(path, `does not match the configuration schema: ${problems}`))
}

const raiseTheCap = "or raise maxFileBytes in the ConfigManager.layerFile options"

const tooLarge = (path: string, size: number, maxFileBytes: number) =>
  new ConfigError({
    reason: "Io",
    path,
    message: `The configuration file ${path} is ${size} bytes, over the cap of ${maxFileBytes} bytes (maxFileBytes), so ` +
      `it was not read and nothing was written to it. Move data that is not configuration out of it, ${raiseTheCap}.`
  })

const isNotFound = (error: { readonly _tag: string; readonly reason?: string }) =>
  error._tag === "SystemError" && error.reason === "NotFound"

// The size is checked before the read, so an oversized file costs a stat, not a parse.
const readText = (path: string, maxFileBytes: number) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const info = yield* fs.stat(path)
    if (Number(info.size) > maxFileBytes) return yield* tooLarge(path, Number(info.size), maxFileBytes)
    const bytes = yield* fs.readFile(path)
    if (bytes.length > maxFileBytes) return yield* tooLarge(path, bytes.length, maxFileBytes)
    return new TextDecoder().decode(bytes)
  }).pipe(
    Effect.catchIf((error) => error._tag !== "ConfigError" && isNotFound(error), () => Effect.succeed(null)),
    Effect.mapError((error) => error._tag === "ConfigError" ? error : io(path, "read", error))
  )

/** The file as start-up found it, and the persistence that keeps it in step afterwards. @internal */
export interface OpenedFile {
  readonly initial: Loaded
  readonly persistence: Persistence
}

/**
 * Reads and checks the file (a missing file is an empty configuration) and returns the
 * persistence for later reads and writes. Remembering the last text read or written is what lets
 * a watcher ignore the store's own writes.
 *
 * @internal
 */
export const open = (
  path: string,
  options: FileStoreOptions
): Effect.Effect<OpenedFile, ConfigError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<FileSystem.FileSystem | Path.Path>()
    const { maxFileBytes } = options
    const text = yield* readText(path, maxFileBytes)
    const initial = yield* parse(path, text)
    const lastText = yield* Ref.make(text)
    const lockFailure = (error: FileLock.FileLockError) => new ConfigError({ reason: "Io", path, message: error.message })

    const write = (held: FileLock.HeldLock) => (document: Document, key: string) =>
      Effect.gen(function*() {
        const serialized = `${JSON.stringify(document, null, 2)}\n`
        const bytes = new TextEncoder().encode(serialized)
        if (bytes.length > maxFileBytes) {
          return yield* new ConfigError({
            reason: "InvalidValue",
            key,
            path,
            message: `Cannot change "${key}": the configuration file ${path} would grow to ${bytes.length} bytes, over ` +
              `its cap of ${maxFileBytes} bytes (maxFileBytes). Nothing was changed. Keep large data out of the ` +
              `configuration, ${raiseTheCap}.`
          })
        }
        yield* writeFileAtomic(path, bytes, { mode: fileMode, dirMode: directoryMode, beforeReplace: held.ensureHeld }).pipe(
          Effect.mapError((error) => error._tag === "FileLockLost" ? lockFailure(error) : io(path, "write", error))
        )
        yield* Ref.set(lastText, serialized)
      }).pipe(Effect.provide(context))

    const persistence: Persistence = {
      readChanged: Effect.gen(function*() {
        const current = yield* readText(path, maxFileBytes)
        if (current === (yield* Ref.get(lastText))) return Option.none()
        const loaded = yield* parse(path, current)
        yield* Ref.set(lastText, current)
        return Option.some(loaded)
      }).pipe(Effect.provide(context)),
      exclusive: (edit) =>
        FileLock.withFileLock(path, options.lock, (held) => edit(write(held))).pipe(
          Effect.mapError((error) =>
            error._tag === "ConfigError"
              ? error
              : error._tag === "FileLockTimeout"
              ? lockFailure(error)
              : io(FileLock.lockPathFor(path), "lock", error)
          ),
          Effect.provide(context)
        )
    }
    return { initial, persistence }
  })

/**
 * Calls `refresh` whenever the file may have changed. The directory is watched, not the file,
 * because editors save by replacing the file; bursts of events are debounced. One extra refresh
 * shortly after start covers an edit made before the watcher was registered. When watching is
 * impossible, a warning is logged and edits made by hand are still picked up by the next `set`.
 *
 * @internal
 */
export const watch = (
  path: string,
  refresh: Effect.Effect<void, ConfigError>
): Effect.Effect<void, never, FileSystem.FileSystem | Path.Path | Scope.Scope> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const pathApi = yield* Path.Path
    const directory = pathApi.dirname(path)
    const name = pathApi.basename(path)
    const warn = (message: string) => Effect.logWarning(message).pipe(Effect.annotateLogs({ configFile: path }))
    const created = yield* fs.makeDirectory(directory, { recursive: true, mode: directoryMode }).pipe(Effect.either)
    if (Either.isLeft(created)) {
      return yield* warn(`Not watching ${directory} for hand edits: the directory could not be created.`)
    }
    const fileEvents = fs.watch(directory).pipe(Stream.filter((event) => pathApi.basename(event.path) === name))
    const catchUp = Stream.fromEffect(Effect.sleep("250 millis"))
    yield* Stream.merge(fileEvents, catchUp).pipe(
      Stream.debounce("50 millis"),
      Stream.runForEach(() =>
        refresh.pipe(
          Effect.catchAll((error) => warn(`Ignored a hand edit of the configuration file; the values loaded before stay in effect. ${error.message}`))
        )
      ),
      Effect.catchAll((error) =>
        warn(`Stopped watching the configuration file for hand edits (${error.message}); the next set will still read it.`)
      ),
      Effect.forkScoped
    )
  })
