/**
 * The served agent's task store in the database behind `Storage`: the same scoping (tenant and
 * owner), `ListTasks` filters, order and page tokens as `BoundedTaskStore`, and the same bound
 * (finished tasks dropped `ttl` after they finished, the oldest finished first beyond
 * `maxTasks`), so `GetTask`, `ListTasks` and `SubscribeToTask` answer after a restart and from
 * any replica that shares the database. Tasks are stored as the SDK's JSON (`Task.toJSON`).
 *
 * `hasRoom` must answer synchronously (the executor asks before it starts a run): it reads the
 * counts this store took after its last save or eviction, which other replicas may have moved
 * since; the bound itself is enforced on every save.
 */
import { type ListTasksRequest, type ListTasksResponse, Task } from "@a2a-js/sdk"
import type { ServerCallContext } from "@a2a-js/sdk/server"
import * as Effect from "effect/Effect"
import type { StorageError } from "../../domain/Errors.js"
import type { Service as StorageService } from "../../storage/Storage.js"
import {
  decodePageToken,
  defaultPageSize,
  encodePageToken,
  finishedStates,
  scopeOf,
  type ServedTaskStore,
  timestampOf
} from "./serverTaskStore.js"

/** The scope as a key PostgreSQL can keep: its text may hold no NUL, which separates tenant and owner. */
const scopeKeyOf = (context: ServerCallContext): string => JSON.stringify(scopeOf(context))

interface TaskRow {
  readonly task: string
}

export class SqlTaskStore implements ServedTaskStore {
  private kept = 0
  private finished = 0

  /** `now` is the server's clock, so a TestClock moves the TTL too. */
  constructor(
    readonly storage: StorageService,
    readonly maxTasks: number,
    readonly ttlMillis: number,
    readonly now: () => number
  ) {}

  private run<A>(effect: Effect.Effect<A, StorageError>): Promise<A> {
    return Effect.runPromise(effect)
  }

  async load(taskId: string, context: ServerCallContext): Promise<Task | undefined> {
    const sql = this.storage.sql
    const [row] = await this.run(this.storage.use(
      `loading A2A task ${JSON.stringify(taskId)}`,
      sql<TaskRow>`SELECT task FROM a2a_tasks WHERE scope = ${scopeKeyOf(context)} AND task_id = ${taskId}`
    ))
    return row === undefined ? undefined : Task.fromJSON(JSON.parse(row.task))
  }

  async save(task: Task, context: ServerCallContext): Promise<void> {
    const sql = this.storage.sql
    const scope = scopeKeyOf(context)
    const finishedAt = finishedStates.has(task.status?.state ?? 0) ? this.now() : null
    const json = JSON.stringify(Task.toJSON(task))
    await this.run(this.storage.transaction(
      `saving A2A task ${JSON.stringify(task.id)}`,
      Effect.gen(this, function*() {
        // A finished task keeps the time it first finished, so its TTL does not restart.
        yield* sql`INSERT INTO a2a_tasks (scope, task_id, context_id, state, status_timestamp, finished_at, task)
          VALUES (${scope}, ${task.id}, ${task.contextId}, ${task.status?.state ?? 0}, ${timestampOf(task)}, ${finishedAt}, ${json})
          ON CONFLICT (scope, task_id) DO UPDATE SET context_id = excluded.context_id, state = excluded.state,
            status_timestamp = excluded.status_timestamp, task = excluded.task,
            finished_at = CASE WHEN excluded.finished_at IS NULL THEN NULL ELSE COALESCE(a2a_tasks.finished_at, excluded.finished_at) END`
        yield* this.refreshCounts
        const excess = this.kept - this.maxTasks
        if (excess > 0 && this.finished > 0) {
          yield* sql`DELETE FROM a2a_tasks WHERE (scope, task_id) IN (
            SELECT scope, task_id FROM a2a_tasks WHERE finished_at IS NOT NULL ORDER BY finished_at, task_id LIMIT ${excess})`
          yield* this.refreshCounts
        }
      })
    ))
  }

  private get refreshCounts() {
    const sql = this.storage.sql
    return sql<{ kept: number | string; finished: number | string | null }>`SELECT COUNT(*) AS kept,
      SUM(CASE WHEN finished_at IS NULL THEN 0 ELSE 1 END) AS finished FROM a2a_tasks`.pipe(
      Effect.map(([counts]) => {
        this.kept = Number(counts?.kept ?? 0)
        this.finished = Number(counts?.finished ?? 0)
      })
    )
  }

  hasRoom(): boolean {
    return this.kept < this.maxTasks || this.finished > 0
  }

  /** Also takes the counts `hasRoom` reads, which is why the server calls it once at start. */
  async evictExpired(): Promise<void> {
    const sql = this.storage.sql
    const cutoff = this.now() - this.ttlMillis
    await this.run(this.storage.use(
      "dropping expired A2A tasks",
      Effect.zipRight(
        Number.isFinite(cutoff) ? sql`DELETE FROM a2a_tasks WHERE finished_at IS NOT NULL AND finished_at <= ${cutoff}` : Effect.void,
        this.refreshCounts
      )
    ))
  }

  async list(params: ListTasksRequest, context: ServerCallContext): Promise<ListTasksResponse> {
    const { contextId, includeArtifacts = false, pageSize = defaultPageSize, pageToken, status, statusTimestampAfter } = params
    const sql = this.storage.sql
    const after = statusTimestampAfter ? new Date(statusTimestampAfter).getTime() : undefined
    const filters = sql.and([
      sql`scope = ${scopeKeyOf(context)}`,
      ...(contextId ? [sql`context_id = ${contextId}`] : []),
      ...(status !== undefined && status !== 0 ? [sql`state = ${status}`] : [])
    ])
    const cursor = pageToken ? decodePageToken(pageToken) : undefined
    const rows = await this.run(this.storage.use(
      "listing A2A tasks",
      sql<TaskRow>`SELECT task FROM a2a_tasks WHERE ${filters}`
    ))
    // Filtered and ordered here as in the SDK's own store (instants, not texts; the same string
    // order whatever the database's collation), so the page tokens are the same too.
    const matching = rows.map((row) => Task.fromJSON(JSON.parse(row.task)))
      .filter((task) => after === undefined || (!!task.status?.timestamp && new Date(task.status.timestamp).getTime() > after))
      .sort((a, b) => timestampOf(b).localeCompare(timestampOf(a)) || b.id.localeCompare(a.id))
    let rest = matching
    if (cursor !== undefined) {
      const at = matching.findIndex((task) => timestampOf(task) === cursor.timestamp && task.id === cursor.id)
      rest = at === -1 ? [] : matching.slice(at + 1)
    }
    const page = rest.slice(0, pageSize)
    const last = page.at(-1)
    return {
      tasks: page.map((task) => includeArtifacts ? task : { ...task, artifacts: [] }),
      nextPageToken: last !== undefined && rest.length > page.length ? encodePageToken(timestampOf(last), last.id) : "",
      pageSize,
      totalSize: matching.length
    }
  }
}
