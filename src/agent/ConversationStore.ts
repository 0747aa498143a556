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
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { ParseError } from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { AgentError, type StorageError } from "../domain/Errors.js"
import { Message, ToolCall, Usage } from "../domain/Message.js"
import { writeFileAtomic } from "../internal/atomicFile.js"
import type { ConversationSummary } from "../storage/internal/conversationTable.js"
import { makeSqlConversations } from "../storage/internal/sqlConversations.js"
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

const PendingJson = Schema.parseJson(PendingStep)

/**
 * Conversations in the database behind `Storage` (SQLite or PostgreSQL): a row per message, so a
 * save writes only the messages that are new (and deletes those trimming dropped), never the whole
 * history. The store remembers the rows it last read or wrote for each conversation; a save is
 * planned against them, so two processes saving one conversation at once both keep their
 * messages, in one order, and a load of an unchanged conversation reads only its version. The
 * pending step and the messages of a save land together or not at all. Failures are `AgentError`
 * `ConversationStore` with the `StorageError` as `cause`.
 *
 * @since 0.1.0
 */
export const makeSql: Effect.Effect<SqlService, never, Storage> = Effect.gen(function*() {
  const storage = yield* Storage
  const conversations = makeSqlConversations(storage, PendingJson)
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
      conversations.load(contextId).pipe(
        Effect.map(Option.map(({ messages, pending }): Conversation => pending === undefined ? { messages } : { messages, pending })),
        Effect.mapError(fail(contextId))
      ),
    save: (contextId, conversation) =>
      conversations.save(contextId, conversation.messages, conversation.pending).pipe(Effect.mapError(fail(contextId))),
    delete: (contextId) => conversations.remove(contextId).pipe(Effect.mapError(fail(contextId))),
    list: (options) => conversations.list(options).pipe(Effect.mapError(fail(undefined)))
  }
})

/** `makeSql` as a Layer. @since 0.1.0 */
export const layerSql: Layer.Layer<ConversationStore, never, Storage> = Layer.effect(ConversationStore, makeSql)

