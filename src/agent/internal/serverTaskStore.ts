/**
 * The served agent's task store: the SDK's in-memory store (tasks kept per tenant and owner,
 * the same `ListTasks` filters, order and page tokens) with a bound. A task that finished
 * (completed, failed, canceled, rejected) is dropped once it is `ttl` old, and when more than
 * `maxTasks` are kept the oldest finished ones go first. A task still in progress or waiting
 * for input is never dropped: a run may still write to it, a client may still answer it.
 */
import type { ListTasksRequest, ListTasksResponse, Task } from "@a2a-js/sdk"
import { RequestMalformedError } from "@a2a-js/sdk/errors"
import { resolveUserScope, type ServerCallContext, type TaskStore } from "@a2a-js/sdk/server"
import { State } from "./serverPublisher.js"

/** The states after which a run no longer writes to its task. */
export const finishedStates: ReadonlySet<number> = new Set([State.completed, State.failed, State.canceled, State.rejected])
export const defaultPageSize = 50

/** What the server needs of its task store beyond the SDK's `TaskStore`. */
export interface ServedTaskStore extends TaskStore {
  /** Whether a new task can be kept: there is space, or a finished task to make space with. */
  hasRoom(): boolean
  /** Drops the finished tasks that are `ttl` old. */
  evictExpired(): void | Promise<void>
}

interface Finished {
  readonly scopeKey: string
  readonly taskId: string
  readonly at: number
}

export class BoundedTaskStore implements ServedTaskStore {
  /** Tasks by scope (tenant and owner), then by id. */
  private readonly scopes = new Map<string, Map<string, Task>>()
  /** Finished tasks by scoped key, oldest first (a Map keeps insertion order). */
  private readonly finished = new Map<string, Finished>()
  private size = 0

  /** `now` is the server's clock, so a TestClock moves the TTL too. */
  constructor(readonly maxTasks: number, readonly ttlMillis: number, readonly now: () => number) {}

  async load(taskId: string, context: ServerCallContext): Promise<Task | undefined> {
    const task = this.scopes.get(scopeOf(context))?.get(taskId)
    return task === undefined ? undefined : structuredClone(task)
  }

  async save(task: Task, context: ServerCallContext): Promise<void> {
    const scopeKey = scopeOf(context)
    let scope = this.scopes.get(scopeKey)
    if (scope === undefined) this.scopes.set(scopeKey, scope = new Map())
    if (!scope.has(task.id)) this.size++
    scope.set(task.id, structuredClone(task))
    const key = `${scopeKey}\u0000${task.id}`
    if (!finishedStates.has(task.status?.state ?? 0)) this.finished.delete(key)
    else if (!this.finished.has(key)) this.finished.set(key, { scopeKey, taskId: task.id, at: this.now() })
    while (this.size > this.maxTasks && this.finished.size > 0) this.evictOldest()
  }

  /** Whether a new task can be kept: there is space, or a finished task to make space with. */
  hasRoom(): boolean {
    return this.size < this.maxTasks || this.finished.size > 0
  }

  /** Drops the finished tasks that are `ttl` old. */
  evictExpired(): void {
    const cutoff = this.now() - this.ttlMillis
    for (const finished of this.finished.values()) {
      if (finished.at > cutoff) return
      this.evictOldest()
    }
  }

  async list(params: ListTasksRequest, context: ServerCallContext): Promise<ListTasksResponse> {
    const { contextId, includeArtifacts = false, pageSize = defaultPageSize, pageToken, status, statusTimestampAfter } =
      params
    const after = statusTimestampAfter ? new Date(statusTimestampAfter).getTime() : undefined
    const matching = [...(this.scopes.get(scopeOf(context))?.values() ?? [])]
      .filter((task) =>
        (!contextId || task.contextId === contextId) &&
        (status === undefined || status === 0 || task.status?.state === status) &&
        (after === undefined || (!!task.status?.timestamp && new Date(task.status.timestamp).getTime() > after))
      )
      .sort((a, b) => timestampOf(b).localeCompare(timestampOf(a)) || b.id.localeCompare(a.id))
    let rest = matching
    if (pageToken) {
      const cursor = decodePageToken(pageToken)
      const at = matching.findIndex((task) => timestampOf(task) === cursor.timestamp && task.id === cursor.id)
      rest = at === -1 ? [] : matching.slice(at + 1)
    }
    const page = rest.slice(0, pageSize)
    const last = page.at(-1)
    return {
      tasks: page.map((task) => ({ ...structuredClone(task), ...(includeArtifacts ? {} : { artifacts: [] }) })),
      nextPageToken: last !== undefined && rest.length > page.length ? encodePageToken(timestampOf(last), last.id) : "",
      pageSize,
      totalSize: matching.length
    }
  }

  private evictOldest(): void {
    const [key, oldest] = this.finished.entries().next().value!
    this.finished.delete(key)
    const scope = this.scopes.get(oldest.scopeKey)
    if (scope?.delete(oldest.taskId)) this.size--
    // Tenants are the client's to name: an emptied scope must not stay behind.
    if (scope?.size === 0) this.scopes.delete(oldest.scopeKey)
  }
}

/** Tasks are kept apart by tenant and owner, as the SDK's own store does. */
export const scopeOf = (context: ServerCallContext): string => `${context.tenant ?? ""}\u0000${resolveUserScope(context)}`

export const timestampOf = (task: Task): string => task.status?.timestamp || ""

// The SDK's page token format, so a client sees the same tokens as from its own store.
export const encodePageToken = (timestamp: string, id: string): string => Buffer.from(`${timestamp}|${id}`).toString("base64")

export const decodePageToken = (pageToken: string): { readonly timestamp: string; readonly id: string } => {
  const [timestamp = "", ...idParts] = Buffer.from(pageToken, "base64").toString("utf-8").split("|")
  if (idParts.length === 0) throw new RequestMalformedError("Invalid page token: pass the nextPageToken of an earlier ListTasks answer.")
  return { timestamp, id: idParts.join("|") }
}
