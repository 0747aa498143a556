/**
 * The storage schema, versioned with `@effect/sql`'s `Migrator`. Each migration is written once
 * and never edited; a new table or column is a new entry. A database whose latest migration is
 * newer than any this version knows was written by a newer kernel: it is refused before anything
 * runs, and left as it was.
 *
 * The statements are plain SQL both SQLite and PostgreSQL accept. Times are epoch milliseconds in
 * BIGINT columns; JSON is kept as TEXT, encoded and decoded by the domain Schemas.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"

/** The table where `Migrator` records which migrations ran. */
export const migrationsTable = "kernel_migrations"

const initial = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE conversations (
    context_id TEXT PRIMARY KEY,
    next_seq INTEGER NOT NULL,
    version INTEGER NOT NULL,
    pending TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
  )`
  yield* sql`CREATE TABLE conversation_messages (
    context_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (context_id, seq)
  )`
  yield* sql`CREATE TABLE run_logs (
    task_id TEXT PRIMARY KEY,
    next_seq INTEGER NOT NULL,
    updated_at BIGINT NOT NULL
  )`
  yield* sql`CREATE INDEX run_logs_updated_at ON run_logs (updated_at)`
  yield* sql`CREATE TABLE run_events (
    task_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (task_id, seq)
  )`
  yield* sql`CREATE TABLE a2a_tasks (
    scope TEXT NOT NULL,
    task_id TEXT NOT NULL,
    context_id TEXT NOT NULL,
    state INTEGER NOT NULL,
    status_timestamp TEXT NOT NULL,
    finished_at BIGINT,
    task TEXT NOT NULL,
    PRIMARY KEY (scope, task_id)
  )`
  yield* sql`CREATE INDEX a2a_tasks_finished_at ON a2a_tasks (finished_at)`
  yield* sql`CREATE INDEX a2a_tasks_listing ON a2a_tasks (scope, status_timestamp, task_id)`
})

const migrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "1_initial": initial
}

/** The newest schema version this kernel knows. */
export const latestVersion = Math.max(...Object.keys(migrations).map((key) => Number(key.split("_")[0])))

/** Marks the refusal of a newer database, so the caller can tell it from other migration failures. */
export const tooNewMarker = "effect-agent-kernel: database schema is newer"

/**
 * The loader runs inside the Migrator's transaction (after PostgreSQL's table lock), so the
 * version check and the migrations see the same database.
 */
const checkedLoader = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ latest: number | string | null }>`SELECT MAX(migration_id) AS latest FROM ${
    sql(migrationsTable)
  }`.withoutTransform.pipe(
    Effect.mapError((cause) => new Migrator.MigrationError({ reason: "bad-state", message: String(cause), cause }))
  )
  const found = Number(rows[0]?.latest ?? 0)
  if (found > latestVersion) {
    return yield* new Migrator.MigrationError({
      reason: "bad-state",
      message: `${tooNewMarker}: version ${found}, this kernel knows up to ${latestVersion}`
    })
  }
  return yield* Migrator.fromRecord(migrations)
})

/** Brings the schema up to `latestVersion`; refuses a newer one. */
export const migrate = Migrator.make({})({ loader: checkedLoader, table: migrationsTable })
