/**
 * A real OpenAI-compatible HTTP server on 127.0.0.1 (ephemeral port) for tests, demos and
 * benchmarks. Every `POST /v1/chat/completions` is answered by the next step of a script —
 * a JSON reply, an SSE reply (with delays, a stall, a missing `[DONE]` or a connection reset), any
 * status with headers and body, a hang, or a reset — and every request is recorded (method,
 * path, headers, body, and whether the client closed its socket). `GET /v1/models` and
 * `GET /health/liveliness` answer too.
 *
 * @example
 * ```ts
 * const server = yield* OpenAiServer.start({
 *   script: [OpenAiServer.sse(OpenAiServer.textChunks(["Hel", "lo"]))]
 * })
 * // point a provider at server.url, then inspect server.completions[0].body
 * ```
 */
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/** One request as the server received it. */
export interface RecordedRequest {
  readonly index: number
  readonly method: string
  readonly path: string
  /** Lower-case header names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>
  readonly rawBody: string
  /** The body parsed as JSON, or `undefined` when it was empty or not JSON. */
  readonly body: any
  /** The client's port: two requests with the same port came over one kept-alive connection. */
  readonly remotePort: number
  /** Resolves when the client's socket for this request has closed. */
  readonly closed: Promise<void>
  /** Whether the response was cut off (the client went away before the server finished it). */
  readonly abortedByClient: () => boolean
}

/** One Server-Sent Event to send: JSON or text data, a comment (keep-alive), or raw text. */
export type SseEvent =
  | { readonly kind: "data"; readonly data: string; readonly event?: string }
  | { readonly kind: "comment"; readonly text: string }
  | { readonly kind: "raw"; readonly text: string }

/** How the server answers one chat-completions request. Delays are real milliseconds. */
export type Step =
  | {
    readonly kind: "json"
    readonly body: unknown
    readonly status?: number
    readonly headers?: Readonly<Record<string, string>>
    readonly delayMs?: number
  }
  | {
    readonly kind: "sse"
    readonly events: ReadonlyArray<SseEvent>
    readonly status?: number
    readonly headers?: Readonly<Record<string, string>>
    /** Before the headers. */
    readonly delayMs?: number
    /** Between events. */
    readonly eventDelayMs?: number
    /** Send `data: [DONE]` after the events (default true). */
    readonly done?: boolean
    /** After this many events, stop sending and keep the connection open (a stall). */
    readonly stallAfter?: number
    /** After this many events, reset the connection. */
    readonly resetAfter?: number
    /**
     * After the events, send a keep-alive comment every this many milliseconds, forever (until
     * the client goes away), instead of ending the answer: a server that drips bytes and never
     * answers.
     */
    readonly keepAliveEveryMs?: number
  }
  | {
    readonly kind: "raw"
    readonly status: number
    readonly body: string | Uint8Array
    readonly headers?: Readonly<Record<string, string>>
    readonly delayMs?: number
    /** Write the body in pieces of this many bytes. */
    readonly chunkSize?: number
    /** Wait this long between pieces (a body that drips). */
    readonly pieceDelayMs?: number
  }
  | { readonly kind: "hang" }
  | { readonly kind: "reset" }

/** Options of `start`. */
export interface Options {
  /** Steps for successive chat-completions requests, or a function choosing one per request. */
  readonly script?: ReadonlyArray<Step> | ((request: RecordedRequest) => Step)
  /** The reply to `GET /v1/models` (default: a list with one model, `test-model`). */
  readonly models?: Step
  /** The reply when the script has no step left (default: HTTP 500 saying so). */
  readonly fallback?: Step
  /**
   * Whether to keep every request for `requests`, `completions` and `waitForRequests` (default
   * `true`). A benchmark turns it off: it sends hundreds of thousands of requests, and a history
   * that grows without bound makes the server's own collections, and so its answers, slower as
   * the run goes on.
   */
  readonly record?: boolean
}

/** A running server. */
export interface OpenAiServer {
  /** `http://127.0.0.1:<port>` (no `/v1`). */
  readonly url: string
  readonly port: number
  /** Every request so far, in arrival order. */
  readonly requests: ReadonlyArray<RecordedRequest>
  /** The chat-completions requests so far. */
  readonly completions: ReadonlyArray<RecordedRequest>
  /** Appends steps to the script. */
  readonly push: (...steps: ReadonlyArray<Step>) => void
  /** Waits (real time, not the TestClock) until `count` requests matching `path` have arrived. */
  readonly waitForRequests: (count: number, path?: string) => Effect.Effect<void>
  readonly close: Effect.Effect<void>
}

const completionsPath = /^\/(v1\/)?chat\/completions$/

/** Starts a server for the current scope; it is closed (all sockets destroyed) with the scope. */
export const start = (options: Options = {}): Effect.Effect<OpenAiServer, never, Scope.Scope> =>
  Effect.acquireRelease(Effect.promise(() => listen(options)), (server) => server.close)

/** Starts a server outside Effect; call `close` when done. */
export const listen = (options: Options = {}): Promise<OpenAiServer> => {
  const requests: Array<RecordedRequest> = []
  const record = options.record ?? true
  let received = 0
  const queue: Array<Step> = Array.isArray(options.script) ? [...options.script] : []
  const chooser = typeof options.script === "function" ? options.script : undefined
  const waiters = new Set<() => void>()
  // One close listener per kept-alive socket, shared by the requests it carries.
  const socketClosed = new WeakMap<object, Promise<void>>()

  const server = Http.createServer((req, res) => {
    const pieces: Array<Buffer> = []
    req.on("data", (piece: Buffer) => pieces.push(piece))
    req.on("end", () => {
      const rawBody = Buffer.concat(pieces).toString("utf8")
      let body: unknown
      try {
        body = rawBody === "" ? undefined : JSON.parse(rawBody)
      } catch {
        body = undefined
      }
      const socket = req.socket
      let closed = socketClosed.get(socket)
      if (closed === undefined) {
        closed = new Promise<void>((resolve) => {
          if (socket.destroyed) resolve()
          else socket.once("close", () => resolve())
        })
        socketClosed.set(socket, closed)
      }
      let aborted = false
      res.once("close", () => {
        if (!res.writableFinished) aborted = true
      })
      const recorded: RecordedRequest = {
        index: received++,
        method: req.method ?? "GET",
        path: (req.url ?? "/").split("?")[0]!,
        headers: headersOf(req),
        rawBody,
        body,
        remotePort: socket.remotePort ?? 0,
        closed,
        abortedByClient: () => aborted
      }
      if (record) requests.push(recorded)
      for (const wake of [...waiters]) wake()
      void answer(res, stepFor(recorded))
    })
  })

  const stepFor = (request: RecordedRequest): Step => {
    if (request.method === "POST" && completionsPath.test(request.path)) {
      const step = chooser !== undefined ? chooser(request) : queue.shift()
      return step ?? options.fallback ??
        status(500, { error: { message: `OpenAiServer: no scripted reply left for request #${request.index}` } })
    }
    if (request.method === "GET" && request.path === "/v1/models") {
      return options.models ?? json({ object: "list", data: [{ id: "test-model", object: "model" }] })
    }
    if (request.method === "GET" && request.path === "/health/liveliness") {
      return { kind: "raw", status: 200, body: "\"I'm alive!\"", headers: { "content-type": "application/json" } }
    }
    return status(404, { error: { message: `OpenAiServer: no route ${request.method} ${request.path}` } })
  }

  const count = (path: string | undefined) =>
    path === undefined ? requests.length : requests.filter((request) => request.path === path).length

  return new Promise((resolve) => {
    // Node adds a "close" listener to a keep-alive socket per response it serves; a client that
    // reuses one connection for many requests is normal, not a leak.
    server.on("connection", (socket) => socket.setMaxListeners(0))
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as AddressInfo).port
      resolve({
        url: `http://127.0.0.1:${port}`,
        port,
        get requests() {
          return requests
        },
        get completions() {
          return requests.filter((request) => completionsPath.test(request.path))
        },
        push: (...steps) => {
          queue.push(...steps)
        },
        waitForRequests: (wanted, path) =>
          Effect.async<void>((resume) => {
            const check = () => {
              if (count(path) >= wanted) {
                waiters.delete(check)
                resume(Effect.void)
              }
            }
            waiters.add(check)
            check()
            return Effect.sync(() => waiters.delete(check))
          }),
        close: Effect.promise(() =>
          new Promise<void>((done) => {
            server.closeAllConnections()
            server.close(() => done())
          })
        )
      })
    })
  })
}

const answer = async (res: Http.ServerResponse, step: Step): Promise<void> => {
  try {
    switch (step.kind) {
      case "hang":
        return
      case "reset":
        res.socket?.resetAndDestroy()
        return
      case "json": {
        await sleep(step.delayMs)
        const payload = JSON.stringify(step.body)
        res.writeHead(step.status ?? 200, { "content-type": "application/json", ...step.headers })
        res.end(payload)
        return
      }
      case "raw": {
        await sleep(step.delayMs)
        res.writeHead(step.status, step.headers ?? {})
        const bytes = typeof step.body === "string" ? Buffer.from(step.body) : step.body
        const size = step.chunkSize ?? bytes.length
        for (let offset = 0; offset < bytes.length; offset += size) {
          if (offset > 0) await sleep(step.pieceDelayMs)
          if (res.destroyed) return
          if (!res.write(bytes.subarray(offset, offset + size))) await drained(res)
          if (res.destroyed) return
        }
        res.end()
        return
      }
      case "sse": {
        await sleep(step.delayMs)
        res.writeHead(step.status ?? 200, {
          "content-type": "text/event-stream",
          "cache-control": "no-cache",
          ...step.headers
        })
        res.flushHeaders()
        // A stall or reset counts as the next event, so it also waits `eventDelayMs`: the client
        // reads what was sent before the connection goes away.
        for (let index = 0; index <= step.events.length; index++) {
          if (index > 0) await sleep(step.eventDelayMs)
          if (res.destroyed) return
          if (step.stallAfter === index) return
          if (step.resetAfter === index) {
            res.socket?.resetAndDestroy()
            return
          }
          if (index === step.events.length) break
          if (!res.write(encodeEvent(step.events[index]!))) await drained(res)
        }
        if (step.keepAliveEveryMs !== undefined) {
          while (!res.destroyed) {
            await sleep(step.keepAliveEveryMs)
            if (!res.destroyed && !res.write(encodeEvent(comment()))) await drained(res)
          }
          return
        }
        res.end(step.done === false ? "" : "data: [DONE]\n\n")
        return
      }
    }
  } catch {
    res.destroy()
  }
}

const encodeEvent = (event: SseEvent): string => {
  switch (event.kind) {
    case "comment":
      return `: ${event.text}\n\n`
    case "raw":
      return event.text
    case "data":
      return `${event.event !== undefined ? `event: ${event.event}\n` : ""}data: ${event.data}\n\n`
  }
}

const headersOf = (req: Http.IncomingMessage): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(", ") : value
  }
  return out
}

const sleep = (ms: number | undefined) =>
  ms === undefined || ms <= 0 ? Promise.resolve() : new Promise<void>((resolve) => setTimeout(resolve, ms))

const drained = (res: Http.ServerResponse) =>
  new Promise<void>((resolve) => {
    const done = () => {
      res.off("drain", done)
      res.off("close", done)
      resolve()
    }
    res.on("drain", done)
    res.on("close", done)
  })

// ---- step builders ----

/** A JSON reply (status 200 unless given). */
export const json = (
  body: unknown,
  options: { readonly status?: number; readonly headers?: Readonly<Record<string, string>>; readonly delayMs?: number } = {}
): Step => ({ kind: "json", body, ...options })

/** An SSE reply; see the `sse` step's fields for delays, stalls, resets and a missing `[DONE]`. */
export const sse = (
  events: ReadonlyArray<SseEvent>,
  options: Omit<Extract<Step, { kind: "sse" }>, "kind" | "events"> = {}
): Step => ({ kind: "sse", events, ...options })

/** Any status with a JSON (object) or text body and headers. */
export const status = (code: number, body: unknown = "", headers: Readonly<Record<string, string>> = {}): Step => ({
  kind: "raw",
  status: code,
  body: typeof body === "string" ? body : JSON.stringify(body),
  headers: { "content-type": typeof body === "string" ? "text/plain" : "application/json", ...headers }
})

/** Accept the request and never answer (no headers) until the client goes away. */
export const hang: Step = { kind: "hang" }

/** Reset the connection without answering. */
export const reset: Step = { kind: "reset" }

/** A data event: objects are JSON-encoded, strings sent as they are. */
export const data = (value: unknown, event?: string): SseEvent => ({
  kind: "data",
  data: typeof value === "string" ? value : JSON.stringify(value),
  ...(event !== undefined ? { event } : {})
})

/** A comment line (what servers send as keep-alive). */
export const comment = (text = "keep-alive"): SseEvent => ({ kind: "comment", text })

/** Raw text written to the stream as is. */
export const raw = (text: string): SseEvent => ({ kind: "raw", text })

// ---- completion builders ----

/** Wire usage as OpenAI reports it. */
export const usage = (promptTokens: number, completionTokens: number) => ({
  prompt_tokens: promptTokens,
  completion_tokens: completionTokens,
  total_tokens: promptTokens + completionTokens
})

interface CompletionOptions {
  readonly model?: string
  /** Wire usage; omitted when not given. */
  readonly usage?: unknown
  readonly finishReason?: string | null
}

/** A complete text answer (`chat.completion`), with the model's `reasoning_content` when given. */
export const textCompletion = (text: string, options: CompletionOptions & { readonly reasoning?: string } = {}) => ({
  id: "chatcmpl-test",
  object: "chat.completion",
  model: options.model ?? "test-model",
  choices: [{
    index: 0,
    message: {
      role: "assistant",
      content: text,
      ...(options.reasoning !== undefined ? { reasoning_content: options.reasoning } : {})
    },
    finish_reason: options.finishReason ?? "stop"
  }],
  ...(options.usage !== undefined ? { usage: options.usage } : {})
})

/** A tool call as the builders take it; `arguments` as an object is JSON-encoded. */
export interface WireCall {
  readonly id: string
  readonly name: string
  readonly arguments: string | Record<string, unknown>
}

const argumentsText = (call: WireCall) => typeof call.arguments === "string" ? call.arguments : JSON.stringify(call.arguments)

/** A complete tool-calls answer (`chat.completion` with `content: null`). */
export const toolCallCompletion = (calls: ReadonlyArray<WireCall>, options: CompletionOptions = {}) => ({
  id: "chatcmpl-test",
  object: "chat.completion",
  model: options.model ?? "test-model",
  choices: [{
    index: 0,
    message: {
      role: "assistant",
      content: null,
      tool_calls: calls.map((call) => ({
        id: call.id,
        type: "function",
        function: { name: call.name, arguments: argumentsText(call) }
      }))
    },
    finish_reason: options.finishReason ?? "tool_calls"
  }],
  ...(options.usage !== undefined ? { usage: options.usage } : {})
})

const chunk = (model: string, delta: unknown, finishReason: string | null = null) =>
  data({ id: "chatcmpl-test", object: "chat.completion.chunk", model, choices: [{ index: 0, delta, finish_reason: finishReason }] })

const usageChunk = (model: string, wireUsage: unknown) =>
  data({ id: "chatcmpl-test", object: "chat.completion.chunk", model, choices: [], usage: wireUsage })

/** A streamed text answer: a role chunk, one chunk per piece, a finish chunk, then usage if given. */
export const textChunks = (pieces: ReadonlyArray<string>, options: CompletionOptions = {}): Array<SseEvent> => {
  const model = options.model ?? "test-model"
  const events = [chunk(model, { role: "assistant", content: "" }), ...pieces.map((piece) => chunk(model, { content: piece }))]
  if (options.finishReason !== null) events.push(chunk(model, {}, options.finishReason ?? "stop"))
  if (options.usage !== undefined) events.push(usageChunk(model, options.usage))
  return events
}

/**
 * A streamed answer that reasons first, as DeepSeek-style servers send it: one chunk per piece
 * of `reasoning` in `delta.reasoning_content` (or `delta.reasoning`, as Ollama and OpenRouter
 * name it, with `field: "reasoning"`), then the answer as `textChunks`.
 */
export const reasoningChunks = (
  reasoning: ReadonlyArray<string>,
  answer: ReadonlyArray<string>,
  options: CompletionOptions & { readonly field?: "reasoning_content" | "reasoning" } = {}
): Array<SseEvent> => {
  const model = options.model ?? "test-model"
  const field = options.field ?? "reasoning_content"
  const [role, ...rest] = textChunks(answer, options)
  return [role!, ...reasoning.map((piece) => chunk(model, { content: null, [field]: piece })), ...rest]
}

/**
 * A streamed tool-calls answer: for each call, a first fragment with its index, id and name,
 * then one fragment per piece of `fragments` (default: the whole arguments in one piece).
 */
export const toolCallChunks = (
  calls: ReadonlyArray<WireCall & { readonly fragments?: ReadonlyArray<string> }>,
  options: CompletionOptions = {}
): Array<SseEvent> => {
  const model = options.model ?? "test-model"
  const events = [chunk(model, { role: "assistant", content: null })]
  calls.forEach((call, index) => {
    events.push(chunk(model, {
      tool_calls: [{ index, id: call.id, type: "function", function: { name: call.name, arguments: "" } }]
    }))
    for (const piece of call.fragments ?? [argumentsText(call)]) {
      events.push(chunk(model, { tool_calls: [{ index, function: { arguments: piece } }] }))
    }
  })
  if (options.finishReason !== null) events.push(chunk(model, {}, options.finishReason ?? "tool_calls"))
  if (options.usage !== undefined) events.push(usageChunk(model, options.usage))
  return events
}
