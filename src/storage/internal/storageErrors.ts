/**
 * One place that turns what a database driver threw (better-sqlite3's `SqliteError`, node-postgres'
 * `DatabaseError`, a socket error, `@effect/sql`'s `SqlError` around any of them) into a
 * `StorageError` that names the database and says what to do. Every text that reaches an error
 * passes `scrub`, so a password never leaves this module.
 */
import { Predicate } from "effect"
import { StorageError, type StorageErrorReason } from "../../domain/Errors.js"

/** Which database, as people see it, and the secret that must never appear in a message. */
export interface Target {
  readonly backend: "sqlite" | "postgres"
  /** The SQLite file, or the PostgreSQL URL without its password. */
  readonly database: string
  readonly password?: string | undefined
  /** The busy timeout, for the `Locked` advice. */
  readonly busyTimeoutMs?: number
}

/** Removes the password (as given and URL-encoded) from a text. */
export const scrub = (target: Target, text: string): string => {
  const secret = target.password
  if (secret === undefined || secret.length === 0) return text
  return text.split(secret).join("***").split(encodeURIComponent(secret)).join("***")
}

const codeOf = (error: unknown): string | undefined =>
  Predicate.hasProperty(error, "code") && error.code !== undefined ? String(error.code) : undefined

/** The innermost driver error: `SqlError.cause`, an `AggregateError`'s first error, or itself. */
const rootOf = (error: unknown): unknown => {
  let current = error
  for (let depth = 0; depth < 5; depth++) {
    if (codeOf(current) !== undefined) return current
    if (current instanceof AggregateError && current.errors.length > 0) current = current.errors[0]
    else if (Predicate.hasProperty(current, "cause") && current.cause !== undefined) current = current.cause
    else return current
  }
  return current
}

const textOf = (error: unknown): string =>
  error instanceof Error ? error.message : Predicate.hasProperty(error, "message") ? String(error.message) : String(error)

/** Builds a `StorageError` with the password scrubbed from the message. */
export const storageError = (target: Target, reason: StorageErrorReason, message: string): StorageError =>
  new StorageError({ reason, database: target.database, message: scrub(target, message) })

const sqliteReason = (code: string): StorageErrorReason => {
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) return "Locked"
  if (code === "SQLITE_NOTADB" || code.startsWith("SQLITE_CORRUPT")) return "Corrupt"
  if (code === "SQLITE_FULL") return "DiskFull"
  if (code.startsWith("SQLITE_CANTOPEN") || code.startsWith("SQLITE_READONLY") || code === "SQLITE_PERM") {
    return "Unauthorized"
  }
  return "Failed"
}

const postgresReason = (code: string | undefined, text: string): StorageErrorReason => {
  switch (code) {
    case "28P01": // invalid_password
    case "28000": // invalid_authorization_specification
    case "42501": // insufficient_privilege
      return "Unauthorized"
    case "53100": // disk_full
      return "DiskFull"
    case "55P03": // lock_not_available
      return "Locked"
    case "57P03": // cannot_connect_now (starting up or shutting down)
    case "ECONNREFUSED":
    case "ECONNRESET":
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "ETIMEDOUT":
      return "Unreachable"
  }
  if (/timed out|timeout|terminated unexpectedly|Connection terminated/i.test(text)) return "Unreachable"
  if (/password|SASL|authentication/i.test(text)) return "Unauthorized"
  return "Failed"
}

const sqliteAdvice = (target: Target, reason: StorageErrorReason): string => {
  switch (reason) {
    case "Locked":
      return `another program holds a lock on it${
        target.busyTimeoutMs !== undefined ? ` for more than ${target.busyTimeoutMs} ms` : ""
      }: close the other program that uses this file (another kernel process with an exclusive lock, or a SQLite shell in a transaction), or point storage.url at another file`
    case "Corrupt":
      return "the file is not a SQLite database or is damaged: move it aside (keep it if you want to recover it with the sqlite3 shell's .recover) and the kernel starts a new one, or point storage.url at another file"
    case "DiskFull":
      return "the disk is full: free some space and try again"
    case "Unauthorized":
      return "the file or its directory cannot be opened for writing: check their owner and permissions, or point storage.url at a writable place"
    default:
      return "check the file, its directory and the disk"
  }
}

const postgresAdvice = (reason: StorageErrorReason): string => {
  switch (reason) {
    case "Unreachable":
      return "no PostgreSQL server answered: check that it runs and that storage.url names its host and port"
    case "Unauthorized":
      return "the server refused the user or password: check the user in storage.url, and store the right password with the secrets store under storage.postgres.password"
    case "DiskFull":
      return "the server's disk is full: free some space on it and try again"
    case "Locked":
      return "another session holds a lock the kernel needs: try again when it is done"
    default:
      return "check the server's log for the reason"
  }
}

/** Classifies any driver failure (a `SqlError`, a thrown error, a defect) for `target`. */
export const fromCause = (target: Target, what: string, error: unknown): StorageError => {
  if (error instanceof StorageError) return error
  const root = rootOf(error)
  const code = codeOf(root)
  const detail = `${textOf(root)}${code !== undefined && !textOf(root).includes(code) ? ` (${code})` : ""}`
  if (target.backend === "sqlite") {
    const reason = code !== undefined && code.startsWith("SQLITE_")
      ? sqliteReason(code)
      : /directory does not exist|EACCES|EPERM/.test(detail)
      ? "Unauthorized"
      : /ENOSPC/.test(detail)
      ? "DiskFull"
      : "Failed"
    return storageError(
      target,
      reason,
      `SQLite database ${target.database}: ${what} failed: ${detail}; ${sqliteAdvice(target, reason)}.`
    )
  }
  const reason = postgresReason(code, textOf(root))
  return storageError(
    target,
    reason,
    `PostgreSQL database ${target.database}: ${what} failed: ${detail}; ${postgresAdvice(reason)}.`
  )
}
