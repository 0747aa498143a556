/**
 * The event log of each run: the `AgentEvent`s of a task, in the order they were appended, kept
 * in the database behind `Storage` so a client can read a run again after a restart or from
 * another process (`read(taskId, { from })` resumes after the last event it saw). Logs are kept
 * for `retention` after their task's last event (30 days by default, `storage.retention.days`
 * in the configuration); `cleanup` deletes the older ones, whole tasks at a time.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { ConfigManager } from "../config/ConfigManager.js"
import { defaultRetentionDays } from "../config/KernelConfig.js"
import { StorageError } from "../domain/Errors.js"
import { AgentEvent } from "../domain/Events.js"
import { makeEventTable } from "./internal/eventTable.js"
import { Storage } from "./Storage.js"

/** One logged event and its place in its task's log (1, 2, 3, …). @since 0.1.0 */
export interface Entry {
  readonly seq: number
  readonly event: AgentEvent
}

/** @since 0.1.0 */
export interface Service {
  /** Appends events (each to its own task's log, in order); returns their sequence numbers. */
  readonly append: (...events: ReadonlyArray<AgentEvent>) => Effect.Effect<ReadonlyArray<number>, StorageError>
  /** A task's events from sequence number `from` (1 by default) on, at most `limit` (1,000). */
  readonly read: (
    taskId: string,
    options?: { readonly from?: number; readonly limit?: number }
  ) => Effect.Effect<ReadonlyArray<Entry>, StorageError>
  /** Deletes the logs whose last event is older than the retention; returns how many tasks went. */
  readonly cleanup: Effect.Effect<number, StorageError>
}

/** @since 0.1.0 */
export class EventLog extends Context.Tag("effect-agent-kernel/EventLog")<EventLog, Service>() {}

/** @since 0.1.0 */
export interface Options {
  /** How long a task's log is kept after its last event; 30 days by default. */
  readonly retention?: Duration.DurationInput
}

const EventJson = Schema.parseJson(AgentEvent)
const encodeEvent = Schema.encode(EventJson)
const decodeEvent = Schema.decode(EventJson)

const retentionOf = (options: Options) => Duration.decode(options.retention ?? Duration.days(defaultRetentionDays))

/** Groups events by task, keeping each task's order. */
const byTask = (events: ReadonlyArray<AgentEvent>): Map<string, Array<AgentEvent>> => {
  const tasks = new Map<string, Array<AgentEvent>>()
  for (const event of events) {
    const list = tasks.get(event.taskId)
    if (list === undefined) tasks.set(event.taskId, [event])
    else list.push(event)
  }
  return tasks
}

/**
 * The log in the database behind `Storage`. An event that does not decode when read (written by
 * a kernel whose events differ) fails the read with `StorageError` `Corrupt` naming the task.
 *
 * @since 0.1.0
 */
export const makeSql = (options: Options = {}): Effect.Effect<Service, never, Storage> =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const table = makeEventTable(storage)
    const retention = retentionOf(options)
    const undecodable = (taskId: string, seq: number, error: unknown) =>
      new StorageError({
        reason: "Corrupt",
        database: storage.database,
        message: `Event ${seq} of task ${JSON.stringify(taskId)} in ${storage.database} does not decode (${String(error)}); ` +
          `read from ${seq + 1} to skip it, or let cleanup remove the task's log.`
      })
    return {
      append: (...events) =>
        Effect.forEach(byTask(events), ([taskId, taskEvents]) =>
          Effect.forEach(taskEvents, (event) => Effect.map(encodeEvent(event), (json) => ({ type: event.type, json }))).pipe(
            Effect.orDie,
            Effect.flatMap((rows) => table.append(taskId, rows))
          )).pipe(Effect.map((seqs) => seqs.flat())),
      read: (taskId, readOptions = {}) =>
        table.read(taskId, readOptions.from ?? 1, readOptions.limit ?? 1_000).pipe(
          Effect.flatMap((rows) =>
            Effect.forEach(rows, (row) =>
              decodeEvent(row.json).pipe(
                Effect.map((event): Entry => ({ seq: row.seq, event })),
                Effect.mapError((error) => undecodable(taskId, row.seq, error))
              ))
          )
        ),
      cleanup: Clock.currentTimeMillis.pipe(
        Effect.flatMap((now) => table.deleteOlderThan(now - Duration.toMillis(retention)))
      )
    }
  })

/** `makeSql` as a Layer. @since 0.1.0 */
export const layerSql = (options: Options = {}): Layer.Layer<EventLog, never, Storage> =>
  Layer.effect(EventLog, makeSql(options))

/**
 * `layerSql` with the retention from the configuration key `storage.retention.days`.
 *
 * @since 0.1.0
 */
export const layerConfig: Layer.Layer<EventLog, never, Storage | ConfigManager> = Layer.effect(
  EventLog,
  Effect.gen(function*() {
    const days = yield* (yield* ConfigManager).get("storage.retention.days")
    const retention = Option.match(days, {
      onNone: () => Duration.days(defaultRetentionDays),
      onSome: (value) => Duration.days(typeof value === "number" && value > 0 ? value : defaultRetentionDays)
    })
    return yield* makeSql({ retention })
  })
)

/** A log in memory (lost with the process), with the same order and retention. @since 0.1.0 */
export const makeMemory = (options: Options = {}): Effect.Effect<Service> =>
  Effect.sync(() => {
    const logs = new Map<string, { events: Array<AgentEvent>; updatedAt: number }>()
    const retention = retentionOf(options)
    return {
      append: (...events) =>
        Effect.map(Clock.currentTimeMillis, (now) =>
          events.map((event) => {
            const log = logs.get(event.taskId) ?? { events: [], updatedAt: now }
            logs.set(event.taskId, log)
            log.updatedAt = now
            return log.events.push(event)
          })),
      read: (taskId, readOptions = {}) =>
        Effect.sync(() => {
          const from = Math.max(1, readOptions.from ?? 1)
          return (logs.get(taskId)?.events ?? [])
            .slice(from - 1, from - 1 + (readOptions.limit ?? 1_000))
            .map((event, index): Entry => ({ seq: from + index, event }))
        }),
      cleanup: Effect.map(Clock.currentTimeMillis, (now) => {
        let removed = 0
        for (const [taskId, log] of logs) {
          if (log.updatedAt < now - Duration.toMillis(retention)) removed += Number(logs.delete(taskId))
        }
        return removed
      })
    }
  })

/** `makeMemory` as a Layer. @since 0.1.0 */
export const layerMemory = (options: Options = {}): Layer.Layer<EventLog> => Layer.effect(EventLog, makeMemory(options))

/**
 * Logs a run's events as they pass, leaving the stream as it was. Deltas (`content-delta` and
 * other `*-delta` events) are left out unless `deltas` is set: `content-complete` carries their sum,
 * and a log of every token would be most of the database.
 *
 * @example
 * ```ts
 * Agent.run({ prompt }).pipe(EventLog.recording(log))
 * ```
 * @since 0.1.0
 */
export const recording = (log: Service, options: { readonly deltas?: boolean } = {}) =>
<E, R>(events: Stream.Stream<AgentEvent, E, R>): Stream.Stream<AgentEvent, E | StorageError, R> =>
  Stream.tap(events, (event) =>
    options.deltas !== true && event.type.endsWith("-delta")
      ? Effect.void
      : log.append(event))
