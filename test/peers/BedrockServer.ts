/**
 * A local Bedrock Runtime peer for tests: a node:http server on 127.0.0.1 that answers
 * `POST /model/{modelId}/converse` with Converse JSON and `POST /model/{modelId}/converse-stream`
 * with `application/vnd.amazon.eventstream` frames, so the real AWS SDK client (pointed here with
 * `endpoint`) does its real signing, decoding and error parsing. Each request takes the next
 * scripted reply; every request and every socket close is recorded.
 */
import { EventStreamCodec } from "@smithy/eventstream-codec"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"

/** The event types of a ConverseStream. */
export type EventType =
  | "messageStart"
  | "contentBlockStart"
  | "contentBlockDelta"
  | "contentBlockStop"
  | "messageStop"
  | "metadata"

/** One step of a scripted event stream. */
export type StreamPart =
  | { readonly _tag: "event"; readonly type: EventType; readonly body: unknown }
  | { readonly _tag: "exception"; readonly type: string; readonly body: unknown }
  | { readonly _tag: "corrupt"; readonly type: EventType; readonly body: unknown }
  | { readonly _tag: "delay"; readonly ms: number }
  | { readonly _tag: "reset" }
  | { readonly _tag: "stall" }

/**
 * What the server does with one request: a Converse JSON body, an event stream (which ends the
 * response after its last part unless the part resets or stalls), an AWS error (status,
 * `x-amzn-ErrorType`, JSON `{ message }`), a raw answer, a reset before any byte, or silence.
 */
export type Reply =
  | { readonly _tag: "converse"; readonly body: unknown }
  | { readonly _tag: "stream"; readonly parts: ReadonlyArray<StreamPart> }
  | {
    readonly _tag: "error"
    readonly status: number
    readonly errorType?: string
    readonly message: string
    readonly headers?: Readonly<Record<string, string>>
  }
  | {
    readonly _tag: "raw"
    readonly status: number
    readonly headers: Readonly<Record<string, string>>
    readonly body: string
    /** Write the body in pieces of this many bytes (without a Content-Length). */
    readonly chunkSize?: number
  }
  | { readonly _tag: "reset" }
  | { readonly _tag: "stall" }

/** A request as the server saw it; `body` is the decoded JSON. */
export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly operation: "converse" | "converse-stream" | "other"
  readonly modelId: string | undefined
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  readonly body: unknown
  /** Whether the response was cut off (the client went away before the server finished it). */
  readonly abortedByClient: () => boolean
}

/** The running peer: where it listens, its script queue and what it recorded. */
export interface BedrockServer {
  /** `http://127.0.0.1:<port>`, for the client's `endpoint`. */
  readonly endpoint: string
  /** Queues replies, consumed one per request in order. */
  readonly enqueue: (...replies: ReadonlyArray<Reply>) => Effect.Effect<void>
  /** Every request received so far. */
  readonly requests: Effect.Effect<ReadonlyArray<RecordedRequest>>
  /** Completes with request number `index` (0-based) once the server has read it. */
  readonly received: (index: number) => Effect.Effect<RecordedRequest>
  /** Completes when the socket that carried request number `index` has closed. */
  readonly socketClosed: (index: number) => Effect.Effect<void>
}

const codec = new EventStreamCodec(
  (bytes) => new TextDecoder().decode(bytes),
  (text) => new TextEncoder().encode(text)
)

const frame = (messageType: "event" | "exception", type: string, body: unknown): Uint8Array =>
  codec.encode({
    headers: {
      ":message-type": { type: "string", value: messageType },
      [messageType === "event" ? ":event-type" : ":exception-type"]: { type: "string", value: type },
      ":content-type": { type: "string", value: "application/json" }
    },
    body: new TextEncoder().encode(JSON.stringify(body))
  })

/** An event frame part. */
export const event = (type: EventType, body: unknown): StreamPart => ({ _tag: "event", type, body })

/** An in-stream exception frame part (`:exception-type` as Bedrock names it, e.g. `modelStreamErrorException`). */
export const exception = (type: string, message: string, extra: Record<string, unknown> = {}): StreamPart => ({
  _tag: "exception",
  type,
  body: { message, ...extra }
})

/** A text delta event for content block `index`. */
export const textDelta = (text: string, index = 0): StreamPart =>
  event("contentBlockDelta", { contentBlockIndex: index, delta: { text } })

/** A reasoning delta event for content block `index` (what reasoning models stream before the answer). */
export const reasoningDelta = (text: string, index = 0): StreamPart =>
  event("contentBlockDelta", { contentBlockIndex: index, delta: { reasoningContent: { text } } })

/** The closing events: `messageStop` then, when given, `metadata` with usage. */
export const stop = (
  stopReason: string,
  usage?: { readonly inputTokens?: number; readonly outputTokens?: number; readonly totalTokens?: number }
): ReadonlyArray<StreamPart> => [
  event("messageStop", { stopReason }),
  ...(usage !== undefined ? [event("metadata", { usage, metrics: { latencyMs: 1 } })] : [])
]

/** A complete text answer streamed as the given deltas. */
export const textStream = (
  deltas: ReadonlyArray<string>,
  usage: { readonly inputTokens?: number; readonly outputTokens?: number; readonly totalTokens?: number } = {
    inputTokens: 5,
    outputTokens: deltas.length,
    totalTokens: 5 + deltas.length
  }
): Reply => ({
  _tag: "stream",
  parts: [
    event("messageStart", { role: "assistant" }),
    event("contentBlockStart", { contentBlockIndex: 0, start: {} }),
    ...deltas.map((delta) => textDelta(delta)),
    event("contentBlockStop", { contentBlockIndex: 0 }),
    ...stop("end_turn", usage)
  ]
})

/**
 * A complete answer streamed as a reasoning block (block 0, the given deltas) and then a text
 * block (block 1).
 */
export const reasoningStream = (reasoning: ReadonlyArray<string>, answer: ReadonlyArray<string>): Reply => ({
  _tag: "stream",
  parts: [
    event("messageStart", { role: "assistant" }),
    event("contentBlockStart", { contentBlockIndex: 0, start: {} }),
    ...reasoning.map((delta) => reasoningDelta(delta, 0)),
    event("contentBlockStop", { contentBlockIndex: 0 }),
    event("contentBlockStart", { contentBlockIndex: 1, start: {} }),
    ...answer.map((delta) => textDelta(delta, 1)),
    event("contentBlockStop", { contentBlockIndex: 1 }),
    ...stop("end_turn", { inputTokens: 5, outputTokens: reasoning.length + answer.length })
  ]
})

/** A Converse JSON answer with reasoning, text and, optionally, tool uses. */
export const converse = (options: {
  readonly reasoning?: string
  readonly text?: string
  readonly toolUses?: ReadonlyArray<{ readonly toolUseId: string; readonly name: string; readonly input: unknown }>
  readonly stopReason?: string
  readonly usage?: Record<string, number>
}): Reply => ({
  _tag: "converse",
  body: {
    output: {
      message: {
        role: "assistant",
        content: [
          ...(options.reasoning !== undefined ? [{ reasoningContent: { reasoningText: { text: options.reasoning } } }] : []),
          ...(options.text !== undefined ? [{ text: options.text }] : []),
          ...(options.toolUses ?? []).map((toolUse) => ({ toolUse }))
        ]
      }
    },
    stopReason: options.stopReason ?? "end_turn",
    usage: options.usage ?? { inputTokens: 5, outputTokens: 3, totalTokens: 8 },
    metrics: { latencyMs: 1 }
  }
})

/** An AWS error answer: HTTP status, `x-amzn-ErrorType` and a JSON `{ message }` body. */
export const awsError = (
  status: number,
  errorType: string,
  message: string,
  headers?: Readonly<Record<string, string>>
): Reply => ({ _tag: "error", status, errorType, message, ...(headers !== undefined ? { headers } : {}) })

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const writeStream = async (res: Http.ServerResponse, parts: ReadonlyArray<StreamPart>): Promise<void> => {
  res.writeHead(200, { "content-type": "application/vnd.amazon.eventstream" })
  for (const part of parts) {
    switch (part._tag) {
      case "event":
        res.write(frame("event", part.type, part.body))
        break
      case "exception":
        res.write(frame("exception", part.type, part.body))
        break
      case "corrupt": {
        const bytes = frame("event", part.type, part.body)
        // The last payload byte, just before the message CRC: the prelude stays valid, the CRC fails.
        bytes[bytes.length - 5] = bytes[bytes.length - 5]! ^ 0xff
        res.write(bytes)
        break
      }
      case "delay":
        await sleep(part.ms)
        // The client went away: a long script stops here instead of writing into a closed socket.
        if (res.destroyed) return
        break
      case "reset":
        res.socket?.resetAndDestroy()
        return
      case "stall":
        return
    }
  }
  res.end()
}

const writePieces = async (res: Http.ServerResponse, bytes: Buffer, size: number): Promise<void> => {
  for (let offset = 0; offset < bytes.length && !res.destroyed; offset += size) {
    if (!res.write(bytes.subarray(offset, offset + size))) {
      await new Promise<void>((resolve) => {
        res.once("drain", resolve)
        res.once("close", resolve)
      })
    }
  }
  if (!res.destroyed) res.end()
}

const answer = (reply: Reply, res: Http.ServerResponse): void => {
  switch (reply._tag) {
    case "converse":
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(reply.body))
      return
    case "stream":
      void writeStream(res, reply.parts)
      return
    case "error":
      res.writeHead(reply.status, {
        "content-type": "application/json",
        ...(reply.errorType !== undefined ? { "x-amzn-ErrorType": reply.errorType } : {}),
        ...reply.headers
      }).end(JSON.stringify({ message: reply.message }))
      return
    case "raw":
      res.writeHead(reply.status, reply.headers)
      if (reply.chunkSize === undefined) res.end(reply.body)
      else void writePieces(res, Buffer.from(reply.body), reply.chunkSize)
      return
    case "reset":
      res.socket?.resetAndDestroy()
      return
    case "stall":
      return
  }
}

const parsePath = (path: string): Pick<RecordedRequest, "operation" | "modelId"> => {
  const match = /^\/model\/([^/]+)\/(converse|converse-stream)$/.exec(path)
  return match === null
    ? { operation: "other", modelId: undefined }
    : { operation: match[2] as "converse" | "converse-stream", modelId: decodeURIComponent(match[1]!) }
}

const decodeJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

const usesToolBlocksWithoutConfig = (body: unknown): boolean => {
  if (typeof body !== "object" || body === null || "toolConfig" in body) return false
  const messages = (body as { readonly messages?: unknown }).messages
  if (!Array.isArray(messages)) return false
  return messages.some((message: { readonly content?: unknown }) =>
    Array.isArray(message?.content) &&
    message.content.some((block: Record<string, unknown>) => "toolUse" in block || "toolResult" in block)
  )
}

const imageFormats = new Set(["png", "jpeg", "gif", "webp"])

/** Bedrock's validation of image blocks: a known format and base64 `bytes` (the only source it can read here). */
const invalidImage = (body: unknown): string | undefined => {
  const messages = (body as { readonly messages?: unknown } | null)?.messages
  if (!Array.isArray(messages)) return undefined
  for (const message of messages as Array<{ readonly content?: unknown }>) {
    if (!Array.isArray(message?.content)) continue
    for (const block of message.content as Array<Record<string, any>>) {
      if (!("image" in block)) continue
      if (!imageFormats.has(block.image?.format)) return `Invalid image format: ${String(block.image?.format)}.`
      const bytes = block.image?.source?.bytes
      if (typeof bytes !== "string" || !/^[A-Za-z0-9+/]+={0,2}$/.test(bytes)) return "The image source must be base64 bytes."
    }
  }
  return undefined
}

/** Starts the peer on an ephemeral port; it stops, dropping open connections, with the scope. */
export const make: Effect.Effect<BedrockServer, never, Scope.Scope> = Effect.gen(function*() {
  const queue: Array<Reply> = []
  const recorded: Array<RecordedRequest> = []
  const closes: Array<Deferred.Deferred<void>> = []
  const arrivals: Array<Deferred.Deferred<RecordedRequest>> = []
  const arrival = (index: number) => (arrivals[index] ??= Deferred.unsafeMake<RecordedRequest>(FiberId.none))

  const server = Http.createServer((req, res) => {
    const closed = Deferred.unsafeMake<void>(FiberId.none)
    closes.push(closed)
    req.socket.once("close", () => Deferred.unsafeDone(closed, Exit.void))
    const chunks: Array<Buffer> = []
    // Cut off: closed before all of the response was handed to the socket.
    let finished = false
    let aborted = false
    res.once("finish", () => {
      finished = true
    })
    res.once("close", () => {
      if (!finished) aborted = true
    })
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => {
      const path = req.url ?? "/"
      const request: RecordedRequest = {
        method: req.method ?? "",
        path,
        ...parsePath(path),
        headers: { ...req.headers },
        body: decodeJson(Buffer.concat(chunks).toString("utf8")),
        abortedByClient: () => aborted
      }
      recorded.push(request)
      Deferred.unsafeDone(arrival(recorded.length - 1), Exit.succeed(request))
      // Bedrock's own validation, which a scripted reply cannot bypass: tool blocks in the
      // conversation need a toolConfig in the request.
      if (usesToolBlocksWithoutConfig(request.body)) {
        answer(
          awsError(
            400,
            "ValidationException",
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
          ),
          res
        )
        return
      }
      const imageProblem = invalidImage(request.body)
      if (imageProblem !== undefined) {
        answer(awsError(400, "ValidationException", imageProblem), res)
        return
      }
      answer(
        queue.shift() ?? awsError(500, "InternalServerException", "BedrockServer: no scripted reply left for this request"),
        res
      )
    })
  })

  const port = yield* Effect.acquireRelease(
    Effect.async<number>((resume) => {
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as AddressInfo).port)))
    }),
    () =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

  return {
    endpoint: `http://127.0.0.1:${port}`,
    enqueue: (...replies) => Effect.sync(() => void queue.push(...replies)),
    requests: Effect.sync(() => [...recorded]),
    received: (index) => Effect.suspend(() => Deferred.await(arrival(index))),
    socketClosed: (index) =>
      Effect.suspend(() => {
        const closed = closes[index]
        return closed === undefined ? Effect.dieMessage(`BedrockServer: no request number ${index}`) : Deferred.await(closed)
      })
  }
})
