/**
 * Keeps each conversation's (`contextId`'s) history, and the state of a run paused while a
 * client tool waits for input, so `Agent.resume` can continue it — also after a restart with the
 * SQL layer (SQLite or PostgreSQL, through `Storage`) or the file layer.
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { ParseError } from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { AgentError, type StorageError } from "../domain/Errors.js"
import { Message, ToolCall, Usage } from "../domain/Message.js"
import { writeFileAtomic } from "../internal/atomicFile.js"
import { type ConversationSummary, makeConversationTable, type StoredRow } from "../storage/internal/conversationTable.js"
import { Storage } from "../storage/Storage.js"

/**
 * A run paused on client tools: the step it was in, the calls still waiting, and the results
 * of the step's other calls (kept by call id so they can be appended in call order later).
 *
 * @since 0.1.0
 */
export const PendingStep = Schema.Struct({
  taskId: Schema.String,
  step: Schema.Number,
  toolCalls: Schema.Array(ToolCall),
  waiting: Schema.Array(Schema.String),
  results: Schema.Record({ key: Schema.String, value: Message }),
  usage: Usage,
  maxSteps: Schema.Number
})
export type PendingStep = typeof PendingStep.Type

/** @since 0.1.0 */
export const Conversation = Schema.Struct({
  messages: Schema.Array(Message),
  pending: Schema.optional(PendingStep)
})
export type Conversation = typeof Conversation.Type

/** @since 0.1.0 */
export interface Service {
  readonly load: (contextId: string) => Effect.Effect<Option.Option<Conversation>, AgentError>
  readonly save: (contextId: string, conversation: Conversation) => Effect.Effect<void, AgentError>
  readonly delete: (contextId: string) => Effect.Effect<void, AgentError>
}

/** @since 0.1.0 */
export class ConversationStore extends Context.Tag("effect-agent-kernel/ConversationStore")<
  ConversationStore,
  Service
>() {}

/**
 * Keeps at most `maxMessages` messages (system messages at the head are always kept). The cut
 * only falls before a user message, so an assistant's tool calls are never separated from their
 * results; when no such place exists within the limit, the history is kept whole.
 *
 * @since 0.1.0
 */
export const trim = (messages: ReadonlyArray<Message>, maxMessages: number): ReadonlyArray<Message> => {
  if (messages.length <= maxMessages) return messages
  let head = 0
  while (head < messages.length && messages[head]!.role === "system") head++
  const budget = Math.max(1, maxMessages - head)
  for (let start = messages.length - budget; start < messages.length; start++) {
    if (start >= head && messages[start]!.role === "user") {
      return [...messages.slice(0, head), ...messages.slice(start)]
    }
  }
  return messages
}

/** An in-memory store (lost with the process). @since 0.1.0 */
export const makeMemory: Effect.Effect<Service> = Effect.sync(() => {
  const conversations = new Map<string, Conversation>()
  return {
    load: (contextId) => Effect.sync(() => Option.fromNullable(conversations.get(contextId))),
    save: (contextId, conversation) => Effect.sync(() => void conversations.set(contextId, conversation)),
    delete: (contextId) => Effect.sync(() => void conversations.delete(contextId))
  }
})

/** @since 0.1.0 */
export const layerMemory: Layer.Layer<ConversationStore> = Layer.effect(ConversationStore, makeMemory)

const ConversationJson = Schema.parseJson(Conversation)
const decodeConversation = Schema.decodeUnknown(ConversationJson)
const encodeConversation = Schema.encode(ConversationJson)

/**
 * One pretty-printed JSON file per conversation in `directory` (file names are the hex of the
 * context id, so any id is safe), written atomically. A file that does not decode fails with
 * `AgentError` `ConversationStore` naming it; it is never overwritten by a load.
 *
 * @since 0.1.0
 */
export const makeFile = (options: { readonly directory: string }) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const fileOf = (contextId: string) => path.join(options.directory, `${Buffer.from(contextId).toString("hex")}.json`)
    const fail = (contextId: string, what: string, cause: unknown) =>
      new AgentError({
        reason: "ConversationStore",
        contextId,
        message: `Conversation store ${what} failed for ${fileOf(contextId)}: ${describe(cause)}. ` +
          `Check the file and directory permissions, or delete the file to start the conversation afresh.`
      })
    const service: Service = {
      load: (contextId) =>
        fs.readFileString(fileOf(contextId)).pipe(
          Effect.map(Option.some),
          Effect.catchIf((error) => error._tag === "SystemError" && error.reason === "NotFound", () =>
            Effect.succeedNone),
          Effect.mapError((error) => fail(contextId, "read", error)),
          Effect.flatMap((text) =>
            Option.isNone(text)
              ? Effect.succeedNone
              : decodeConversation(text.value).pipe(
                Effect.map(Option.some),
                Effect.mapError((error) => fail(contextId, "decoding", error))
              )
          )
        ),
      save: (contextId, conversation) =>
        encodeConversation(conversation).pipe(
          Effect.flatMap((json) =>
            writeFileAtomic(fileOf(contextId), new TextEncoder().encode(json), { mode: 0o600, dirMode: 0o700 })
          ),
          Effect.mapError((error) => fail(contextId, "write", error)),
          Effect.provideService(FileSystem.FileSystem, fs),
          Effect.provideService(Path.Path, path)
        ),
      delete: (contextId) =>
        fs.remove(fileOf(contextId), { force: true }).pipe(Effect.mapError((error) => fail(contextId, "delete", error)))
    }
    return service
  })

/** @since 0.1.0 */
export const layerFile = (options: { readonly directory: string }) =>
  Layer.effect(ConversationStore, makeFile(options))

const describe = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "object" && cause !== null && "message" in cause
    ? String((cause as { message: unknown }).message)
    : String(cause)

/** One stored conversation in a listing. @since 0.1.0 */
export type Summary = ConversationSummary

/** The SQL store: the store, and a listing of its conversations. @since 0.1.0 */
export interface SqlService extends Service {
  /** The conversations, most recently updated first (1,000 at most unless `limit` says). */
  readonly list: (options?: { readonly limit?: number }) => Effect.Effect<ReadonlyArray<Summary>, AgentError>
}

const MessageJson = Schema.parseJson(Message)
const encodeMessage = Schema.encodeEither(MessageJson)
const decodeMessages = Schema.decodeUnknownEither(Schema.Array(MessageJson))
const PendingJson = Schema.parseJson(PendingStep)

/** How many conversations' last-seen rows one SQL store remembers (each is at most a history). */
const rememberedConversations = 1_000

/**
 * Conversations in the database behind `Storage` (SQLite or PostgreSQL): a row per message, so a
 * save writes only the messages that are new (and deletes those trimming dropped), never the whole
 * history. The store remembers the rows it last read or wrote for each conversation; a save is
 * planned against them, so two processes saving one conversation at once both keep their
 * messages, in one order. The pending step and the messages of a save land together or not at
 * all. Failures are `AgentError` `ConversationStore` with the `StorageError` as `cause`.
 *
 * @since 0.1.0
 */
export const makeSql: Effect.Effect<SqlService, never, Storage> = Effect.gen(function*() {
  const storage = yield* Storage
  const table = makeConversationTable(storage)
  // The rows this process last read or wrote per conversation, with their messages: the base of
  // the next save, and decoded messages a load can reuse when the row is unchanged.
  interface Seen {
    readonly version: number
    readonly rows: ReadonlyArray<StoredRow>
    readonly messages: ReadonlyArray<Message>
  }
  const seen = new Map<string, Seen>()
  const remember = (contextId: string, entry: Seen) => {
    seen.delete(contextId)
    seen.set(contextId, entry)
    if (seen.size > rememberedConversations) seen.delete(seen.keys().next().value!)
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
  // A turn saves the messages it loaded back unchanged: their JSON is kept by object, so a save
  // encodes only the new messages, and comparing with the stored rows is mostly comparing
  // references. Measured: encoding and decoding whole histories one Effect per message was most
  // of a SQLite save's and load's time.
  const encoded = new WeakMap<Message, string>()
  const encode = (message: Message) => {
    const known = encoded.get(message)
    if (known !== undefined) return Either.right(known)
    return Either.map(encodeMessage(message), (json) => {
      encoded.set(message, json)
      return json
    })
  }
  const fail = (contextId: string | undefined) => (error: StorageError | ParseError) =>
    new AgentError({
      reason: "ConversationStore",
      ...(contextId !== undefined ? { contextId } : {}),
      ...(error._tag === "StorageError"
        ? { message: error.message, cause: error }
        : {
          message: `Conversation ${JSON.stringify(contextId)} in ${storage.database} does not decode: ${error.message}. ` +
            `Delete the conversation to start it afresh.`
        })
    })
  return {
    load: (contextId) =>
      table.load(contextId, seen.get(contextId)?.version).pipe(
        Effect.flatMap(Option.match({
          // An empty conversation is a base too: what this process saw when it started one.
          onNone: () =>
            Effect.sync(() => remember(contextId, { version: 0, rows: [], messages: [] })).pipe(
              Effect.as(Option.none<Conversation>())
            ),
          onSome: (stored) =>
            Effect.gen(function*() {
              const known = seen.get(contextId)
              const rows = stored.rows ?? known!.rows
              const messages = stored.rows === undefined ? known!.messages : yield* decodeRows(contextId, stored.rows)
              messages.forEach((message, index) => encoded.set(message, rows[index]!.json))
              const pending = stored.pending === null ? undefined : yield* Schema.decode(PendingJson)(stored.pending)
              remember(contextId, { version: stored.version, rows, messages })
              return Option.some<Conversation>(pending === undefined ? { messages } : { messages, pending })
            })
        })),
        Effect.mapError(fail(contextId))
      ),
    save: (contextId, conversation) =>
      Effect.gen(function*() {
        const messages = yield* Either.all(conversation.messages.map(encode))
        const pending = conversation.pending === undefined ? null : yield* Schema.encode(PendingJson)(conversation.pending)
        // The rows a save leaves are the conversation's messages, in order.
        const before = seen.get(contextId)
        const saved = yield* table.save(contextId, before?.rows, messages, pending)
        // When another process saved in between, its rows are not among these: the version stays
        // unknown so the next load reads the rows again.
        const whole = before === undefined || saved.version === before.version + 1
        remember(contextId, { version: whole ? saved.version : -1, rows: saved.rows, messages: conversation.messages })
      }).pipe(Effect.mapError(fail(contextId))),
    delete: (contextId) =>
      table.remove(contextId).pipe(
        Effect.tap(() => Effect.sync(() => seen.delete(contextId))),
        Effect.mapError(fail(contextId))
      ),
    list: (options) => table.list(options).pipe(Effect.mapError(fail(undefined)))
  }
})

/** `makeSql` as a Layer. @since 0.1.0 */
export const layerSql: Layer.Layer<ConversationStore, never, Storage> = Layer.effect(ConversationStore, makeSql)

