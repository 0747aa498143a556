/**
 * One storage layer for everything the kernel keeps beyond a request — conversations, run event
 * logs, served A2A tasks — on a real database through `@effect/sql`:
 *
 * - **SQLite** (the default): one file, `$XDG_DATA_HOME/effect-agent-kernel/kernel.db` (else
 *   `~/.local/share/effect-agent-kernel/kernel.db`), or the one named by `sqlite:<path>`.
 *   Persistent with no set-up; WAL mode, so readers never wait for the writer.
 * - **PostgreSQL** (`postgres://user@host:port/database`): for several processes or machines
 *   sharing state. The password is never part of the URL: it is given as `password`, or read by
 *   `layerConfig` from the secrets store under `storage.postgres.password`.
 *
 * Opening a database brings its schema up to date (versioned migrations); a database written by
 * a newer kernel is refused with `StorageError` `TooNew` and left untouched. Every failure is a
 * `StorageError` naming the database (never its password) and saying what to do.
 *
 * @since 0.1.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { homedir } from "node:os"
import { join } from "node:path"
import { ConfigManager } from "../config/ConfigManager.js"
import { ConfigError, type SecretsError, type StorageError } from "../domain/Errors.js"
import { SecretsManager } from "../secrets/SecretsManager.js"
import { describePostgresUrl, ensureSchema, type OpenDatabase, openPostgres, openSqlite } from "./internal/openDatabase.js"
import { fromCause, storageError } from "./internal/storageErrors.js"

/** Which kind of database is behind the service. @since 0.1.0 */
export type Backend = "sqlite" | "postgres"

/** @since 0.1.0 */
export interface Service {
  readonly backend: Backend
  /** The database as people may see it: the SQLite file, or the PostgreSQL URL without password. */
  readonly database: string
  /** The `@effect/sql` client, for stores built on this layer. */
  readonly sql: SqlClient.SqlClient
  /**
   * Runs `effect` against the database; its `SqlError`s become `StorageError`s that name the
   * database and say what to do. `what` says what was being done (`"saving conversation x"`).
   */
  readonly use: <A, E, R>(what: string, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, Exclude<E, SqlError> | StorageError, R>
  /** `use` in one transaction: all of `effect`'s writes land, or none does. */
  readonly transaction: <A, E, R>(
    what: string,
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, Exclude<E, SqlError> | StorageError, R>
}

/** @since 0.1.0 */
export class Storage extends Context.Tag("effect-agent-kernel/Storage")<Storage, Service>() {}

/** Where and how to open the database. @since 0.1.0 */
export interface Options {
  /** `sqlite:<path>` or `postgres://user@host:port/database`; the default SQLite file when absent. */
  readonly url?: string | undefined
  /** The PostgreSQL password (never put it in the URL). */
  readonly password?: Redacted.Redacted<string> | undefined
  /** SQLite: how long to wait for another process's write lock before `Locked`; 5 seconds by default. */
  readonly busyTimeout?: Duration.DurationInput | undefined
  /** PostgreSQL: how long to wait for a connection before `Unreachable`; 5 seconds by default. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** PostgreSQL: most connections in the pool; 10 by default. */
  readonly maxConnections?: number | undefined
}

/** The secrets store key of the PostgreSQL password: `storage.postgres.password`. @since 0.1.0 */
export const passwordKey = "storage.postgres.password"

/**
 * The default SQLite file: `$XDG_DATA_HOME/effect-agent-kernel/kernel.db`, else
 * `~/.local/share/effect-agent-kernel/kernel.db`.
 *
 * @since 0.1.0
 */
export const defaultSqlitePath = (env: Record<string, string | undefined> = process.env): string =>
  join(
    env.XDG_DATA_HOME !== undefined && env.XDG_DATA_HOME !== "" ? env.XDG_DATA_HOME : join(env.HOME ?? homedir(), ".local", "share"),
    "effect-agent-kernel",
    "kernel.db"
  )

/** What a storage URL names. @since 0.1.0 */
export type Location =
  | { readonly backend: "sqlite"; readonly path: string }
  | { readonly backend: "postgres"; readonly url: string }

/**
 * Reads a storage URL: absent or empty → the default SQLite file; `sqlite:<path>` (also
 * `sqlite://<path>`) → that file; `postgres://` or `postgresql://` → that server. A URL with a
 * password in it is refused: the password belongs in the secrets store.
 *
 * @since 0.1.0
 */
export const parseUrl = (url: string | undefined): Effect.Effect<Location, StorageError> => {
  if (url === undefined || url.trim() === "") return Effect.succeed({ backend: "sqlite", path: defaultSqlitePath() })
  if (url.startsWith("sqlite:")) {
    const path = url.slice("sqlite:".length).replace(/^\/\//, "")
    return path === ""
      ? Effect.fail(storageError({ backend: "sqlite", database: url }, "Failed", `The storage URL ${url} names no file: write sqlite:<path>, e.g. sqlite:/var/lib/agent/kernel.db.`))
      : Effect.succeed({ backend: "sqlite", path })
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    const database = describePostgresUrl(url)
    if (URL.canParse(url) && new URL(url).password !== "") {
      return Effect.fail(storageError(
        { backend: "postgres", database, password: decodeURIComponent(new URL(url).password) },
        "Unauthorized",
        `The storage URL ${database} carries a password: remove it from the URL and store it with the secrets store under ${passwordKey}.`
      ))
    }
    return Effect.succeed({ backend: "postgres", url })
  }
  return Effect.fail(storageError(
    { backend: "sqlite", database: url },
    "Failed",
    `The storage URL ${JSON.stringify(url)} is neither sqlite:<path> nor postgres://user@host:port/database.`
  ))
}

const serviceOf = ({ sql, target }: OpenDatabase): Service => {
  const classify = <A, E, R>(what: string, effect: Effect.Effect<A, E, R>) =>
    Effect.catchIf(
      effect,
      (error): error is Extract<E, SqlError> => error instanceof SqlError,
      (error) => Effect.fail(fromCause(target, what, error))
    ) as Effect.Effect<A, Exclude<E, SqlError> | StorageError, R>
  return {
    backend: target.backend,
    database: target.database,
    sql,
    use: classify,
    transaction: (what, effect) => classify(what, sql.withTransaction(effect))
  }
}

/**
 * Opens the database for the lifetime of the scope and brings its schema up to date.
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): Effect.Effect<Service, StorageError, Scope.Scope> =>
  Effect.gen(function*() {
    const location = yield* parseUrl(options.url)
    const opened = location.backend === "sqlite"
      ? yield* openSqlite(location.path, Duration.decode(options.busyTimeout ?? "5 seconds"))
      : yield* openPostgres({
        url: location.url,
        password: options.password,
        connectTimeout: Duration.decode(options.connectTimeout ?? "5 seconds"),
        maxConnections: options.maxConnections ?? 10
      })
    yield* ensureSchema(opened)
    return serviceOf(opened)
  })

/** `make` as a Layer. @since 0.1.0 */
export const layer = (options: Options = {}): Layer.Layer<Storage, StorageError> => Layer.scoped(Storage, make(options))

/**
 * The database named by the configuration key `storage.url` (the default SQLite file when it is
 * not set), with the PostgreSQL password from the secrets store key `storage.postgres.password`.
 *
 * @since 0.1.0
 */
export const layerConfig = (
  options: Omit<Options, "url" | "password"> = {}
): Layer.Layer<Storage, StorageError | ConfigError | SecretsError, ConfigManager | SecretsManager> =>
  Layer.scoped(
    Storage,
    Effect.gen(function*() {
      const url = yield* urlFromConfig
      const password = url !== undefined && /^postgres(ql)?:\/\//.test(url)
        ? Option.getOrUndefined(yield* (yield* SecretsManager).retrieve(passwordKey))
        : undefined
      return yield* make({ ...options, url, password })
    })
  )

/** The configured `storage.url`, or undefined for the default. @since 0.1.0 */
export const urlFromConfig: Effect.Effect<string | undefined, ConfigError, ConfigManager> = Effect.gen(function*() {
  const value = yield* (yield* ConfigManager).get("storage.url")
  if (Option.isNone(value)) return undefined
  if (typeof value.value !== "string") {
    return yield* new ConfigError({
      reason: "InvalidValue",
      key: "storage.url",
      message: "storage.url must be a string: sqlite:<path> or postgres://user@host:port/database."
    })
  }
  return value.value
})
