/**
 * The SQL conversation store's machine, over `conversationTable.ts`: it keeps, per conversation,
 * the rows this process last read or wrote (the base the next save is planned against, and the
 * version a load can find unchanged) with their decoded messages, and the JSON of every message
 * object it has seen. A turn saves the messages it loaded back unchanged, so a save encodes only
 * the new ones and a load decodes only changed rows. Measured: encoding and decoding whole
 * histories, one Effect per message, was most of a SQLite save's and load's time.
 *
 * The paused run's pending step is the caller's type: it comes with its own JSON codec.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { ParseError } from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { StorageError } from "../../domain/Errors.js"
import { Message } from "../../domain/Message.js"
import type { Service } from "../Storage.js"
import { makeConversationTable, type StoredRow } from "./conversationTable.js"

const MessageJson = Schema.parseJson(Message)
const encodeMessage = Schema.encodeEither(MessageJson)
const decodeMessages = Schema.decodeUnknownEither(Schema.Array(MessageJson))

/** How many conversations' last-seen rows one store remembers (each is at most a history). */
const rememberedConversations = 1_000

interface Seen {
  readonly version: number
  readonly rows: ReadonlyArray<StoredRow>
  readonly messages: ReadonlyArray<Message>
}

/** A conversation as the store hands it over. */
export interface Loaded<P> {
  readonly messages: ReadonlyArray<Message>
  readonly pending: P | undefined
}

export const makeSqlConversations = <P>(storage: Service, Pending: Schema.Schema<P, string>) => {
  const table = makeConversationTable(storage)
  const seen = new Map<string, Seen>()
  const remember = (contextId: string, entry: Seen) => {
    seen.delete(contextId)
    seen.set(contextId, entry)
    if (seen.size > rememberedConversations) seen.delete(seen.keys().next().value!)
  }
  const encoded = new WeakMap<Message, string>()
  const encode = (message: Message) => {
    const known = encoded.get(message)
    if (known !== undefined) return Either.right(known)
    return Either.map(encodeMessage(message), (json) => {
      encoded.set(message, json)
      return json
    })
  }

  /** Decodes the rows, reusing the messages of rows this process saw unchanged. */
  const decodeRows = (contextId: string, rows: ReadonlyArray<StoredRow>) => {
    const known = new Map<number, Message>()
    const previous = seen.get(contextId)
    previous?.rows.forEach((row, index) => known.set(row.seq, previous.messages[index]!))
    const previousJson = new Map(previous?.rows.map((row) => [row.seq, row.json]))
    const fresh = rows.filter((row) => previousJson.get(row.seq) !== row.json)
    return Either.map(decodeMessages(fresh.map((row) => row.json)), (decoded) => {
      fresh.forEach((row, index) => known.set(row.seq, decoded[index]!))
      return rows.map((row) => known.get(row.seq)!)
    })
  }

  const load = (contextId: string): Effect.Effect<Option.Option<Loaded<P>>, StorageError | ParseError> =>
    Effect.flatMap(table.load(contextId, seen.get(contextId)?.version), (found) => {
      if (Option.isNone(found)) {
        // An empty conversation is a base too: what this process saw when it started one.
        remember(contextId, { version: 0, rows: [], messages: [] })
        return Effect.succeedNone
      }
      return Effect.gen(function*() {
        const stored = found.value
        const known = seen.get(contextId)
        const rows = stored.rows ?? known!.rows
        const messages = stored.rows === undefined ? known!.messages : yield* decodeRows(contextId, stored.rows)
        messages.forEach((message, index) => encoded.set(message, rows[index]!.json))
        const pending = stored.pending === null ? undefined : yield* Schema.decode(Pending)(stored.pending)
        remember(contextId, { version: stored.version, rows, messages })
        return Option.some({ messages, pending })
      })
    })

  const save = (
    contextId: string,
    messages: ReadonlyArray<Message>,
    pending: P | undefined
  ): Effect.Effect<void, StorageError | ParseError> =>
    Effect.gen(function*() {
      const json = yield* Either.all(messages.map(encode))
      const pendingJson = pending === undefined ? null : yield* Schema.encode(Pending)(pending)
      const before = seen.get(contextId)
      const saved = yield* table.save(contextId, before?.rows, json, pendingJson)
      // The rows a save leaves are `messages`, in order. When another process saved in between,
      // its rows are not among them: the version stays unknown so the next load reads the rows.
      const whole = before === undefined || saved.version === before.version + 1
      remember(contextId, { version: whole ? saved.version : -1, rows: saved.rows, messages })
    })

  const remove = (contextId: string): Effect.Effect<void, StorageError> =>
    Effect.tap(table.remove(contextId), () => Effect.sync(() => seen.delete(contextId)))

  return { load, save, remove, list: table.list }
}
