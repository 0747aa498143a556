/**
 * Conversations as rows: one row per conversation (the next sequence number and the paused run's
 * pending step) and one row per message, keyed by `(context_id, seq)`. Messages and the pending
 * step arrive here already encoded as JSON; the conversation store owns their Schemas.
 *
 * Every write starts by upserting the conversation's row. On PostgreSQL that takes the row's
 * lock, on SQLite the database's write lock (waiting up to the busy timeout), before anything is
 * read, so two processes saving one conversation take turns: each reserves its sequence numbers
 * after the other's, and nothing is lost. The primary key would refuse a duplicate should that
 * ever fail.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { StorageError } from "../../domain/Errors.js"
import type { Service } from "../Storage.js"

/** A stored message: its place in the conversation and its JSON. */
export interface StoredRow {
  readonly seq: number
  readonly json: string
}

/**
 * A conversation as stored. `version` goes up with every save, so a reader that holds the rows
 * of a version can skip reading them again (`rows` is then undefined).
 */
export interface StoredConversation {
  readonly version: number
  readonly rows: ReadonlyArray<StoredRow> | undefined
  readonly pending: string | null
}

/** One line of a conversation listing. */
export interface ConversationSummary {
  readonly contextId: string
  readonly messages: number
  readonly createdAt: number
  readonly updatedAt: number
}

/**
 * What a save changes against the rows it started from (`base`): trimming only ever removes a
 * run of rows right after the common head (the system messages), and a turn only appends. So the
 * plan keeps the longest common head, drops the fewest rows after it such that the rest of the
 * base lines up with the new messages, and appends what follows. Rows another process added
 * since `base` was read are not in `base`, so they are neither dropped nor written twice.
 */
export const planSave = (base: ReadonlyArray<StoredRow>, messages: ReadonlyArray<string>) => {
  let head = 0
  while (head < base.length && head < messages.length && base[head]!.json === messages[head]) head++
  for (let keepFrom = head; keepFrom <= base.length; keepFrom++) {
    const kept = base.length - keepFrom
    if (head + kept > messages.length) continue
    let lines = true
    for (let offset = 0; offset < kept && lines; offset++) lines = base[keepFrom + offset]!.json === messages[head + offset]
    if (lines) {
      return { drop: base.slice(head, keepFrom).map((row) => row.seq), append: messages.slice(head + kept), kept: [...base.slice(0, head), ...base.slice(keepFrom)] }
    }
  }
  // keepFrom = base.length always lines up; this is never reached.
  return { drop: base.slice(head).map((row) => row.seq), append: messages.slice(head), kept: base.slice(0, head) }
}

/** The table's operations over a storage service. */
export const makeConversationTable = (storage: Service) => {
  const sql = storage.sql
  const toNumber = (value: unknown) => Number(value)

  const readRows = (contextId: string) =>
    sql<{ seq: number; message: string }>`SELECT seq, message FROM conversation_messages WHERE context_id = ${contextId} ORDER BY seq`
      .pipe(Effect.map((rows) => rows.map((row): StoredRow => ({ seq: toNumber(row.seq), json: row.message }))))

  /** Reads the conversation; its rows only when its version is not `knownVersion`. */
  const load = (contextId: string, knownVersion: number | undefined): Effect.Effect<Option.Option<StoredConversation>, StorageError> =>
    storage.use(
      `loading conversation ${JSON.stringify(contextId)}`,
      Effect.gen(function*() {
        const [conversation] = yield* sql<{ pending: string | null; version: number | string }>`SELECT pending, version
          FROM conversations WHERE context_id = ${contextId}`
        if (conversation === undefined) return Option.none()
        const version = toNumber(conversation.version)
        // Rows read after the version may be newer than it; the next load then reads them again.
        const rows = version === knownVersion ? undefined : yield* readRows(contextId)
        return Option.some({ version, rows, pending: conversation.pending })
      })
    )

  /**
   * Takes the conversation's lock (creating its row), moves its version on, sets its pending step
   * and reserves `count` sequence numbers; returns the first reserved and the new version.
   */
  const lockConversation = (contextId: string, count: number, pending: string | null, now: number) =>
    sql<{ next_seq: number | string; version: number | string }>`INSERT INTO conversations
      (context_id, next_seq, version, pending, created_at, updated_at) VALUES (${contextId}, ${1 + count}, 1, ${pending}, ${now}, ${now})
      ON CONFLICT (context_id) DO UPDATE SET next_seq = conversations.next_seq + ${count},
        version = conversations.version + 1, pending = excluded.pending, updated_at = excluded.updated_at
      RETURNING next_seq, version`.pipe(
      Effect.map((rows) => ({ firstSeq: toNumber(rows[0]!.next_seq) - count, version: toNumber(rows[0]!.version) }))
    )

  const insertRows = (contextId: string, firstSeq: number, messages: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const rows = messages.map((json, index): StoredRow => ({ seq: firstSeq + index, json }))
      // Bounded batches: SQLite takes at most 32,766 bound values in one statement.
      for (let start = 0; start < rows.length; start += 500) {
        const batch = rows.slice(start, start + 500)
        yield* sql`INSERT INTO conversation_messages ${
          sql.insert(batch.map((row) => ({ context_id: contextId, seq: row.seq, message: row.json })))
        }`
      }
      return rows
    })

  /**
   * Saves `messages` and `pending`, changing only what differs from `base` (the rows this
   * process last read or wrote; read afresh when unknown). Returns the rows the conversation
   * now holds as far as this process knows, and its new version.
   */
  const save = (
    contextId: string,
    base: ReadonlyArray<StoredRow> | undefined,
    messages: ReadonlyArray<string>,
    pending: string | null
  ): Effect.Effect<{ readonly rows: ReadonlyArray<StoredRow>; readonly version: number }, StorageError> =>
    storage.transaction(
      `saving conversation ${JSON.stringify(contextId)}`,
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        // With a known base the plan is made first, so one statement locks, reserves and updates.
        let plan = base === undefined ? undefined : planSave(base, messages)
        const { firstSeq, version } = yield* lockConversation(contextId, plan?.append.length ?? 0, pending, now)
        if (plan === undefined) {
          plan = planSave(yield* readRows(contextId), messages)
          if (plan.append.length > 0) {
            yield* sql`UPDATE conversations SET next_seq = ${firstSeq + plan.append.length} WHERE context_id = ${contextId}`
          }
        }
        for (let start = 0; start < plan.drop.length; start += 500) {
          yield* sql`DELETE FROM conversation_messages WHERE context_id = ${contextId} AND ${
            sql.in("seq", plan.drop.slice(start, start + 500))
          }`
        }
        const appended = yield* insertRows(contextId, firstSeq, plan.append)
        return { rows: [...plan.kept, ...appended], version }
      })
    )

  const remove = (contextId: string): Effect.Effect<void, StorageError> =>
    storage.transaction(
      `deleting conversation ${JSON.stringify(contextId)}`,
      Effect.gen(function*() {
        yield* sql`DELETE FROM conversations WHERE context_id = ${contextId}`
        yield* sql`DELETE FROM conversation_messages WHERE context_id = ${contextId}`
      })
    )

  /** The conversations, most recently updated first. */
  const list = (options: { readonly limit?: number } = {}): Effect.Effect<ReadonlyArray<ConversationSummary>, StorageError> =>
    storage.use(
      "listing conversations",
      sql<{ context_id: string; messages: number | string; created_at: number | string; updated_at: number | string }>`
        SELECT c.context_id, c.created_at, c.updated_at,
          (SELECT COUNT(*) FROM conversation_messages m WHERE m.context_id = c.context_id) AS messages
        FROM conversations c ORDER BY c.updated_at DESC, c.context_id LIMIT ${options.limit ?? 1000}`.pipe(
        Effect.map((rows) =>
          rows.map((row): ConversationSummary => ({
            contextId: row.context_id,
            messages: toNumber(row.messages),
            createdAt: toNumber(row.created_at),
            updatedAt: toNumber(row.updated_at)
          }))
        )
      )
    )

  return { load, save, remove, list }
}
