/**
 * A lock that every process sharing a file-backed store takes around its read-modify-write, so
 * two processes never write over each other's changes.
 *
 * Written here rather than taken from npm: `proper-lockfile` (4.1.2, the registry's usual answer)
 * judges a lock stale by its age alone, so it cannot tell a process killed with SIGKILL from a
 * slow one, and it reclaims a stale lock with rmdir + mkdir, which lets two processes that found
 * the same stale lock both hold it (moxystudio/node-proper-lockfile#121, open). Its waiting promise
 * cannot be interrupted, and its default answer to a lost lock is an exception thrown from a timer.
 *
 * How this one works:
 * - The lock is `<file>.lock`, created exclusively (O_EXCL), mode 0600. It names its owner: pid,
 *   the pid's start time (Linux `/proc`), the host (host name and pid namespace) and a random token.
 * - A lock of this host is stale as soon as its owner is gone: no such pid, a zombie, or the pid
 *   reused by a later process. So a holder killed with SIGKILL blocks nobody, and a live holder
 *   is never robbed. A lock whose owner cannot be checked (another host, no `/proc`, unreadable
 *   content) is stale once older than `staleAfter`.
 * - A stale lock is taken over by renaming it to a name of our own and checking it is the one we
 *   judged; a newer lock caught by mistake is put back with link(2), which never replaces a file.
 * - Release removes the lock only while it still holds our token, and `ensureHeld` lets a writer
 *   check, right before it replaces its file, that nobody took the lock over meanwhile.
 * - Waiting is bounded and interruptible. Each attempt is uninterruptible and adds the release to
 *   the scope before it returns, so an interrupted waiter never leaves a lock behind.
 *
 * @internal
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Crypto from "node:crypto"
import * as Os from "node:os"

/** How long to wait for another holder, and when a lock whose owner cannot be checked is abandoned. @internal */
export interface LockOptions {
  readonly timeout: Duration.DurationInput
  readonly staleAfter: Duration.DurationInput
}

/** @internal */
export const defaultLockOptions: LockOptions = { timeout: "15 seconds", staleAfter: "10 seconds" }

/** The lock file guarding `target`. @internal */
export const lockPathFor = (target: string): string => `${target}.lock`

/** Another process held the lock for longer than the caller would wait. @internal */
export class FileLockTimeout extends Data.TaggedError("FileLockTimeout")<{
  readonly target: string
  readonly lockPath: string
  readonly message: string
}> {}

/** The lock was taken over while held (its holder looked abandoned), so the holder must not write. @internal */
export class FileLockLost extends Data.TaggedError("FileLockLost")<{
  readonly target: string
  readonly lockPath: string
  readonly message: string
}> {}

/** @internal */
export type FileLockError = FileLockTimeout | FileLockLost

/** A held lock. @internal */
export interface HeldLock {
  /** Fails with `FileLockLost` unless the lock file still holds this holder's token. */
  readonly ensureHeld: Effect.Effect<void, FileLockLost | PlatformError>
}

interface Owner {
  readonly pid: number
  /** The pid's start time in clock ticks since boot, `null` where `/proc` is missing. */
  readonly start: string | null
  readonly host: string
  readonly token: string
  readonly since: string
}

interface Observed {
  readonly text: string
  readonly owner: Owner | undefined
  readonly info: FileSystem.File.Info
}

type Liveness = "alive" | "gone" | "unknown"

type Attempt =
  | { readonly _tag: "Held" }
  | { readonly _tag: "Busy"; readonly holder: Observed | undefined; readonly retryNow: boolean }

const isReason = (reason: string) => (error: PlatformError): boolean =>
  error._tag === "SystemError" && error.reason === reason

const parseOwner = (text: string): Owner | undefined => {
  try {
    const value: unknown = JSON.parse(text)
    if (typeof value !== "object" || value === null) return undefined
    const owner = value as Record<string, unknown>
    return typeof owner.pid === "number" && typeof owner.host === "string" && typeof owner.token === "string" &&
        typeof owner.since === "string" && (typeof owner.start === "string" || owner.start === null)
      ? owner as unknown as Owner
      : undefined
  } catch {
    return undefined
  }
}

/** `/proc/<pid>/stat` fields after the command name: [0] is the state, [19] the start time. */
const procStat = (pid: number | "self") =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(`/proc/${pid}/stat`)).pipe(
    Effect.map((text) => text.slice(text.lastIndexOf(")") + 2).split(" "))
  )

let thisProcess: { readonly host: string; readonly start: string | null } | undefined

// The pid namespace is part of the host: two containers on one machine may share a host name and
// a file system, and a pid of one means nothing in the other.
const processIdentity = Effect.suspend(() => {
  if (thisProcess !== undefined) return Effect.succeed(thisProcess)
  return Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const namespace = yield* fs.readLink("/proc/self/ns/pid").pipe(Effect.orElseSucceed(() => ""))
    const start = yield* procStat("self").pipe(Effect.map((fields) => fields[19] ?? null), Effect.orElseSucceed(() => null))
    thisProcess = { host: `${Os.hostname()}/${namespace}`, start }
    return thisProcess
  })
})

// Signal 0 tells a pid that no longer exists, though not whether a live one was reused.
const pidExists = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH"
  }
}

const liveness = (owner: Owner): Effect.Effect<Liveness, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const self = yield* processIdentity
    if (owner.host !== self.host) return "unknown"
    const stat = yield* Effect.option(procStat(owner.pid))
    if (Option.isSome(stat)) {
      const [state, start] = [stat.value[0], stat.value[19]]
      if (state === "Z" || state === "X") return "gone"
      if (owner.start === null || start === undefined) return "unknown"
      return start === owner.start ? "alive" : "gone"
    }
    // No /proc entry: a dead pid, or one /proc hides (hidepid) or a system without /proc.
    return pidExists(owner.pid) ? "unknown" : "gone"
  })

const describeOwner = (observed: Observed | undefined, self: { readonly host: string }): string => {
  const owner = observed?.owner
  if (owner === undefined) return "an unknown holder"
  return `process ${owner.pid} ${owner.host === self.host ? "on this machine" : `on ${owner.host.split("/")[0]}`}, ` +
    `since ${owner.since}`
}

/**
 * Takes the lock on `target` for the scope: waits (at most `options.timeout`) while a live process
 * holds it, takes over a stale one, and releases it when the scope closes.
 *
 * @internal
 */
export const acquire = (
  target: string,
  options: LockOptions = defaultLockOptions
): Effect.Effect<HeldLock, FileLockTimeout | PlatformError, FileSystem.FileSystem | Path.Path | Scope.Scope> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const pathApi = yield* Path.Path
    const lockPath = lockPathFor(target)
    const self = yield* processIdentity
    const token = Crypto.randomBytes(16).toString("hex")
    const staleAfter = Duration.toMillis(options.staleAfter)
    const timeout = Duration.decode(options.timeout)
    const observe: Effect.Effect<Option.Option<Observed>, PlatformError> = Effect.all({
      text: fs.readFileString(lockPath),
      info: fs.stat(lockPath)
    }).pipe(
      Effect.map(({ info, text }) => Option.some({ text, info, owner: parseOwner(text) })),
      Effect.catchIf(isReason("NotFound"), () => Effect.succeed(Option.none()))
    )

    const isStale = (observed: Observed) =>
      Effect.gen(function*() {
        const state = observed.owner === undefined ? "unknown" : yield* liveness(observed.owner)
        if (state !== "unknown") return state === "gone"
        const modified = Option.getOrElse(observed.info.mtime, () => new Date(0)).getTime()
        return Date.now() - modified > staleAfter
      })

    // Content, inode and mtime together: a new lock has a new token, and an unreadable one (same
    // empty content) is still told apart by its inode or mtime.
    const fingerprint = ({ info, text }: { readonly text: string; readonly info: FileSystem.File.Info }) =>
      `${text}|${Option.getOrUndefined(info.ino)}|${Option.getOrUndefined(Option.map(info.mtime, (d) => d.getTime()))}`

    const takeOver = (judged: Observed) =>
      Effect.gen(function*() {
        const claimed = `${lockPath}.stale.${token}`
        const renamed = yield* fs.rename(lockPath, claimed).pipe(
          Effect.as(true),
          Effect.catchIf(isReason("NotFound"), () => Effect.succeed(false))
        )
        if (!renamed) return
        const caught = yield* Effect.all({ text: fs.readFileString(claimed), info: fs.stat(claimed) })
        if (fingerprint(caught) !== fingerprint(judged)) {
          yield* fs.link(claimed, lockPath).pipe(Effect.catchIf(isReason("AlreadyExists"), () => Effect.void))
        }
        yield* fs.remove(claimed)
      })

    const release = Effect.gen(function*() {
      const current = yield* observe
      if (Option.isSome(current) && current.value.owner?.token === token) yield* fs.remove(lockPath)
    }).pipe(Effect.catchIf(isReason("NotFound"), () => Effect.void), Effect.ignore)

    const writeLock = Effect.suspend(() => {
      const owner: Owner = { pid: process.pid, start: self.start, host: self.host, token, since: new Date().toISOString() }
      return fs.writeFileString(lockPath, JSON.stringify(owner), { flag: "wx", mode: 0o600 })
    })
    const create = writeLock.pipe(
      Effect.catchIf(isReason("NotFound"), () =>
        Effect.zipRight(fs.makeDirectory(pathApi.dirname(lockPath), { recursive: true, mode: 0o700 }), writeLock))
    )

    /** One attempt: the lock, or what holds it and whether to try again at once (after a take-over). */
    type AttemptEffect = Effect.Effect<Attempt, PlatformError, Scope.Scope | FileSystem.FileSystem>
    const attempt: AttemptEffect = Effect.uninterruptible(Effect.gen(function*() {
      const created = yield* create.pipe(
        Effect.as(true),
        Effect.catchIf(isReason("AlreadyExists"), () => Effect.succeed(false))
      )
      if (created) {
        yield* Effect.addFinalizer(() => release)
        return { _tag: "Held" } as const
      }
      const current = yield* observe
      if (Option.isNone(current)) return { _tag: "Busy", holder: undefined, retryNow: true } as const
      if (!(yield* isStale(current.value))) return { _tag: "Busy", holder: current.value, retryNow: false } as const
      yield* takeOver(current.value)
      return { _tag: "Busy", holder: current.value, retryNow: true } as const
    }))

    const started = yield* Clock.currentTimeMillis
    let pause = 2
    let holder: Observed | undefined
    for (let result = yield* attempt; result._tag === "Busy"; result = yield* attempt) {
      holder = result.holder ?? holder
      if ((yield* Clock.currentTimeMillis) - started >= Duration.toMillis(timeout)) {
        return yield* new FileLockTimeout({
          target,
          lockPath,
          message: `${target} is locked by ${describeOwner(holder, self)} (lock file ${lockPath}), which did not ` +
            `finish within ${Duration.format(timeout)}. Let that process finish or stop it, then try again; if it is ` +
            `no longer running, delete ${lockPath}.`
        })
      }
      if (result.retryNow) continue
      // Jittered, so two waiters do not keep colliding in step.
      yield* Effect.sleep(Duration.millis(pause * (0.5 + Math.random())))
      pause = Math.min(pause * 2, 20)
    }

    const ensureHeld = Effect.flatMap(observe, (current) =>
      Option.isSome(current) && current.value.owner?.token === token ? Effect.void : Effect.fail(
        new FileLockLost({
          target,
          lockPath,
          message: `The lock ${lockPath} was taken over by another process while this one held it (it looked ` +
            `abandoned), so ${target} was not written. Try again.`
        })
      ))
    return { ensureHeld }
  })

/** Runs `body` holding the lock on `target`. @internal */
export const withFileLock = <A, E, R>(
  target: string,
  options: LockOptions,
  body: (lock: HeldLock) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | FileLockTimeout | PlatformError, R | FileSystem.FileSystem | Path.Path> =>
  Effect.scoped(Effect.flatMap(acquire(target, options), body))
