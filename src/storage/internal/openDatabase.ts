/**
 * Opening a database: the SQLite file (its directory made, WAL mode, the busy timeout) or the
 * PostgreSQL pool, then the schema brought up to date. Every failure on the way, thrown or
 * returned, becomes a `StorageError` through `storageErrors.ts`.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import type { StorageError } from "../../domain/Errors.js"
import { latestVersion, migrate, migrationsTable, tooNewMarker } from "./migrations.js"
import { fromCause, storageError, type Target } from "./storageErrors.js"

/** An open database: the client and who it is, for errors. */
export interface OpenDatabase {
  readonly sql: SqlClient.SqlClient
  readonly target: Target
}

/**
 * Opens (creating when missing) the SQLite file at `path`. WAL lets readers go on while one
 * writer commits; `synchronous = NORMAL` is WAL's recommended setting: a commit is atomic and
 * never torn, and only the last commits before a power cut may be lost, not the file.
 */
export const openSqlite = (
  path: string,
  busyTimeout: Duration.Duration
): Effect.Effect<OpenDatabase, StorageError, Scope.Scope> => {
  const target: Target = { backend: "sqlite", database: path, busyTimeoutMs: Duration.toMillis(busyTimeout) }
  return Effect.gen(function*() {
    if (path !== ":memory:") {
      yield* Effect.try({
        try: () => mkdirSync(dirname(path), { recursive: true, mode: 0o700 }),
        catch: (cause) => fromCause(target, "creating its directory", cause)
      })
    }
    // The client opens the file in its constructor and throws there (a missing directory, a
    // file it may not open): such throws arrive as defects.
    const sql = yield* SqliteClient.make({ filename: path, disableWAL: true }).pipe(
      Effect.provide(Reactivity.layer),
      Effect.catchAllDefect((defect) => Effect.fail(fromCause(target, "opening", defect)))
    )
    yield* Effect.forEach(
      [`PRAGMA busy_timeout = ${Math.round(Duration.toMillis(busyTimeout))}`, "PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL"],
      (pragma) => sql.unsafe(pragma),
      { discard: true }
    ).pipe(Effect.mapError((error) => fromCause(target, "opening", error)))
    return { sql, target }
  })
}

/** The PostgreSQL URL as people may see it: no password, whatever was given. */
export const describePostgresUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    parsed.password = ""
    return parsed.toString()
  } catch {
    return "(an unreadable PostgreSQL URL)"
  }
}

/**
 * The URL's parts as separate settings: given a connection string, node-postgres takes every
 * setting from it, and a URL without a password would override the password given apart.
 */
export const connectionFields = (url: string) => {
  const parsed = new URL(url)
  const sslmode = parsed.searchParams.get("sslmode")
  return {
    host: decodeURIComponent(parsed.hostname.replace(/^\[(.*)\]$/, "$1")) || "127.0.0.1",
    port: parsed.port === "" ? 5432 : Number(parsed.port),
    database: decodeURIComponent(parsed.pathname.slice(1)) || "postgres",
    username: decodeURIComponent(parsed.username) || "postgres",
    ...(sslmode === null || sslmode === "disable" || sslmode === "prefer" || sslmode === "allow"
      ? {}
      : { ssl: sslmode === "require" ? { rejectUnauthorized: false } : true })
  }
}

/** Connects a pool to PostgreSQL at `url` (which holds no password) as a check that it answers. */
export const openPostgres = (options: {
  readonly url: string
  readonly password: Redacted.Redacted<string> | undefined
  readonly connectTimeout: Duration.Duration
  readonly maxConnections: number
}): Effect.Effect<OpenDatabase, StorageError, Scope.Scope> => {
  const target: Target = {
    backend: "postgres",
    database: describePostgresUrl(options.url),
    password: options.password === undefined ? undefined : Redacted.value(options.password)
  }
  return PgClient.make({
    ...connectionFields(options.url),
    // Without a password node-postgres throws mid-handshake when the server asks for one, leaving
    // the server waiting on that connection for its authentication timeout; a placeholder gets the
    // server's own refusal at once (and is ignored where no password is asked for).
    password: options.password ?? Redacted.make("no password was given"),
    connectTimeout: options.connectTimeout,
    maxConnections: options.maxConnections,
    applicationName: "effect-agent-kernel"
  }).pipe(
    Effect.provide(Reactivity.layer),
    Effect.catchAllDefect((defect) => Effect.fail(new SqlError({ cause: defect }))),
    Effect.mapError((error) => fromCause(target, "connecting", error)),
    Effect.map((sql): OpenDatabase => ({ sql, target }))
  )
}

const isMissingTable = (error: SqlError): boolean => {
  const cause = error.cause as { readonly code?: unknown; readonly message?: unknown } | undefined
  return cause?.code === "42P01" || /no such table/.test(String(cause?.message ?? ""))
}

/**
 * The schema version the database holds: 0 when the kernel never wrote to it. The SQLite client
 * caches a statement that failed to prepare, so this text must differ from every statement the
 * Migrator runs once the table exists.
 */
const currentVersion = (sql: SqlClient.SqlClient) =>
  sql<{ latest: number | string | null }>`SELECT MAX(migration_id) AS latest FROM ${sql(migrationsTable)} -- on open`
    .withoutTransform
    .pipe(
      Effect.map((rows) => Number(rows[0]?.latest ?? 0)),
      Effect.catchIf(isMissingTable, () => Effect.succeed(0))
    )

const tooNew = (target: Target, found: string) =>
  storageError(
    target,
    "TooNew",
    `The database ${target.database} was written by a newer version of effect-agent-kernel (${found}). ` +
      `It was left untouched: upgrade effect-agent-kernel, or point storage.url at another database.`
  )

/**
 * Brings the schema up to date. The version is read first, so an up-to-date database is not
 * written at all on open, and a newer one is refused before the Migrator touches it.
 */
export const ensureSchema = ({ sql, target }: OpenDatabase): Effect.Effect<void, StorageError> =>
  Effect.gen(function*() {
    const found = yield* currentVersion(sql)
    if (found > latestVersion) return yield* tooNew(target, `schema version ${found}, this version knows up to ${latestVersion}`)
    if (found === latestVersion) return
    yield* migrate.pipe(
      // Two processes creating the migrations table at once: the loser tries again and finds it.
      Effect.retry({ times: 2, while: (error) => error._tag === "SqlError" })
    )
  }).pipe(
    Effect.provideService(SqlClient.SqlClient, sql),
    Effect.catchAll((error) =>
      Effect.fail(
        error._tag === "MigrationError" && error.message.startsWith(tooNewMarker)
          ? tooNew(target, error.message.slice(tooNewMarker.length + 2))
          : fromCause(target, "updating the schema", error)
      )
    ),
    Effect.catchAllDefect((defect) => Effect.fail(fromCause(target, "updating the schema", defect)))
  )
