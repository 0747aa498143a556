/**
 * Run event logs as rows: `run_logs` holds each task's next sequence number and when it last
 * changed, `run_events` one row per event, keyed by `(task_id, seq)`. An append reserves its
 * sequence numbers by upserting the task's row first, which takes PostgreSQL's row lock or
 * SQLite's write lock, so concurrent appenders to one task get distinct, ordered numbers.
 * Retention drops whole tasks, never the head of a log a reader may still be following.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type { StorageError } from "../../domain/Errors.js"
import type { Service } from "../Storage.js"

/** One stored event: its place in the task's log, its type and its JSON. */
export interface EventRow {
  readonly seq: number
  readonly json: string
}

export const makeEventTable = (storage: Service) => {
  const sql = storage.sql

  const append = (
    taskId: string,
    events: ReadonlyArray<{ readonly type: string; readonly json: string }>
  ): Effect.Effect<ReadonlyArray<number>, StorageError> =>
    events.length === 0 ? Effect.succeed([]) : storage.transaction(
      `appending to the event log of task ${JSON.stringify(taskId)}`,
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const [reserved] = yield* sql<{ next_seq: number | string }>`INSERT INTO run_logs (task_id, next_seq, updated_at)
          VALUES (${taskId}, ${1 + events.length}, ${now})
          ON CONFLICT (task_id) DO UPDATE SET next_seq = run_logs.next_seq + ${events.length}, updated_at = excluded.updated_at
          RETURNING next_seq`
        const first = Number(reserved!.next_seq) - events.length
        const rows = events.map((event, index) => ({ task_id: taskId, seq: first + index, type: event.type, event: event.json }))
        for (let start = 0; start < rows.length; start += 500) {
          yield* sql`INSERT INTO run_events ${sql.insert(rows.slice(start, start + 500))}`
        }
        return rows.map((row) => row.seq)
      })
    )

  const read = (taskId: string, from: number, limit: number): Effect.Effect<ReadonlyArray<EventRow>, StorageError> =>
    storage.use(
      `reading the event log of task ${JSON.stringify(taskId)}`,
      sql<{ seq: number | string; event: string }>`SELECT seq, event FROM run_events
        WHERE task_id = ${taskId} AND seq >= ${from} ORDER BY seq LIMIT ${limit}`.pipe(
        Effect.map((rows) => rows.map((row): EventRow => ({ seq: Number(row.seq), json: row.event })))
      )
    )

  /** Deletes the logs of tasks that have not changed since `cutoff`; returns how many. */
  const deleteOlderThan = (cutoff: number): Effect.Effect<number, StorageError> =>
    storage.transaction(
      "deleting expired event logs",
      Effect.gen(function*() {
        const expired = yield* sql<{ task_id: string }>`DELETE FROM run_logs WHERE updated_at < ${cutoff} RETURNING task_id`
        for (let start = 0; start < expired.length; start += 500) {
          yield* sql`DELETE FROM run_events WHERE ${sql.in("task_id", expired.slice(start, start + 500).map((row) => row.task_id))}`
        }
        return expired.length
      })
    )

  return { append, read, deleteOlderThan }
}
