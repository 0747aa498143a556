/**
 * Decodes a streamed chat completion (Server-Sent Events of `chat.completion.chunk`s) into
 * `ChatChunk`s. This is the hot path of streaming, so it avoids Schema decoding per event: each
 * event is `JSON.parse`d once and read with light checks.
 */
import * as Cause from "effect/Cause"
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import type { ProviderError } from "../../domain/Errors.js"
import { type ChatChunk, type FinishReason, sensitiveFieldsOf, type ToolDefinition, type Usage } from "../../domain/Message.js"
import { fromInBand, invalidResponse, truncated } from "./openaiErrors.js"
import { finishReason as toFinishReason, toolCall, usage as toUsage } from "./openaiWire.js"
import { responseTooLarge } from "./responseLimits.js"
import { SseEvents } from "./sseEvents.js"

interface OpenCall {
  readonly id: string
  readonly name: string
  readonly index: number
  /** Whether its tool has sensitive fields, whose raw fragments are not passed on. */
  readonly sensitive: boolean
  args: string
}

/**
 * Stateful decoder of one response. `feed` takes raw body bytes; `end` is called at EOF. Both
 * return the chunks decoded so far, or the error that ends the stream.
 */
class StreamDecoder {
  private readonly text = new TextDecoder()
  private readonly events: SseEvents
  private out: Array<ChatChunk> = []
  private error: ProviderError | undefined
  private readonly calls = new Map<number, OpenCall>()
  private usage: Usage | undefined
  private finishReason: FinishReason | undefined
  private sawToolCalls = false
  private model: string | undefined
  done = false

  constructor(
    private readonly providerId: string,
    private readonly metadata: Record<string, string> | undefined,
    private readonly secret: string | undefined,
    maxEventSize: number,
    private readonly tools: ReadonlyArray<ToolDefinition> | undefined
  ) {
    this.events = new SseEvents((event, data) => {
      this.onEvent(event, data)
      return !this.done && this.error === undefined
    }, maxEventSize)
  }

  feed(bytes: Chunk.Chunk<Uint8Array>): ProviderError | Array<ChatChunk> {
    for (const piece of bytes) {
      const failure = this.feedText(this.text.decode(piece, { stream: true }))
      if (failure !== undefined) return failure
      if (this.error !== undefined || this.done) break
    }
    return this.take()
  }

  private feedText(text: string): ProviderError | undefined {
    const failure = this.events.feed(text)
    return failure === undefined
      ? undefined
      : responseTooLarge(this.providerId, "a stream event", "maxEventBytes", failure.cause.maxEventSize)
  }

  end(): ProviderError | Array<ChatChunk> {
    if (!this.done && this.error === undefined) {
      const failure = this.feedText(this.text.decode() + "\n\n")
      if (failure !== undefined) return failure
      if (!this.done && this.error === undefined) {
        if (this.finishReason === undefined) return truncated(this.providerId)
        this.complete()
      }
    }
    return this.take()
  }

  private take(): ProviderError | Array<ChatChunk> {
    if (this.error !== undefined) return this.error
    const out = this.out
    this.out = []
    return out
  }

  private onEvent(event: string, data: string): void {
    if (event !== "message" && event !== "error") return
    if (data === "[DONE]") {
      this.complete()
      return
    }
    let json: unknown
    try {
      json = JSON.parse(data)
    } catch {
      this.error = invalidResponse(this.providerId, `malformed JSON in a stream event: ${data}`, this.secret)
      return
    }
    if (typeof json !== "object" || json === null) {
      this.error = invalidResponse(this.providerId, `a stream event is not a JSON object: ${data}`, this.secret)
      return
    }
    const record = json as Record<string, unknown>
    if (event === "error" || (record.error !== undefined && record.error !== null)) {
      this.error = fromInBand(this.providerId, record.error ?? record, this.metadata, this.secret)
      return
    }
    if (typeof record.model === "string") this.model = record.model
    if (record.usage !== undefined && record.usage !== null) this.usage = toUsage(record.usage)
    const choices = record.choices
    if (!Array.isArray(choices) || choices.length === 0) return
    const choice = choices[0] as Record<string, unknown> | null
    if (choice === null || typeof choice !== "object") return
    const delta = choice.delta as Record<string, unknown> | null | undefined
    if (delta !== undefined && delta !== null) {
      const content = delta.content
      if (typeof content === "string" && content !== "") this.out.push({ _tag: "text-delta", delta: content })
      const reasoning = delta.reasoning_content ?? delta.reasoning
      if (typeof reasoning === "string" && reasoning !== "") this.out.push({ _tag: "reasoning-delta", delta: reasoning })
      if (Array.isArray(delta.tool_calls)) this.onToolCalls(delta.tool_calls)
    }
    const reason = choice.finish_reason
    if (reason !== undefined && reason !== null) {
      this.finishReason = toFinishReason(reason)
      this.endCalls()
    }
  }

  private onToolCalls(fragments: Array<unknown>): void {
    for (let position = 0; position < fragments.length; position++) {
      const fragment = fragments[position] as Record<string, unknown> | null
      if (fragment === null || typeof fragment !== "object") continue
      const index = typeof fragment.index === "number" ? fragment.index : position
      const fn = fragment.function as Record<string, unknown> | null | undefined
      let call = this.calls.get(index)
      if (call === undefined) {
        if (typeof fn?.name !== "string" || fn.name === "") {
          this.error = invalidResponse(
            this.providerId,
            `the first fragment of tool call ${index} has no function name`
          )
          return
        }
        call = {
          id: typeof fragment.id === "string" ? fragment.id : `call_${index}`,
          name: fn.name,
          index,
          sensitive: (sensitiveFieldsOf(this.tools, fn.name)?.length ?? 0) > 0,
          args: ""
        }
        this.calls.set(index, call)
        this.sawToolCalls = true
        this.out.push({ _tag: "tool-call-start", index, id: call.id, name: call.name })
      }
      const args = fn?.arguments
      if (typeof args === "string" && args !== "") {
        call.args += args
        // A tool with sensitive fields gets no raw fragments: they would carry the secret.
        if (!call.sensitive) this.out.push({ _tag: "tool-call-delta", index, argumentsDelta: args })
      }
    }
  }

  private endCalls(): void {
    for (const call of this.calls.values()) {
      this.out.push({ _tag: "tool-call-end", index: call.index, toolCall: toolCall(call.id, call.name, call.args, this.tools) })
    }
    this.calls.clear()
  }

  private complete(): void {
    this.done = true
    this.endCalls()
    if (this.usage !== undefined) this.out.push({ _tag: "usage", usage: this.usage })
    this.out.push({
      _tag: "finish",
      finishReason: this.finishReason ?? (this.sawToolCalls ? "tool_calls" : "stop"),
      ...(this.model !== undefined ? { model: this.model } : {}),
      ...(this.metadata !== undefined ? { metadata: this.metadata } : {})
    })
  }
}

/**
 * A channel from response body bytes to chat chunks. It fails on malformed or in-band errors,
 * on an event longer than `maxEventSize` characters (as soon as that much of it arrived, with
 * `InvalidResponse`), and with `Truncated` when the body ends before `[DONE]` and without a finish reason; a failure
 * of the body itself is turned into a `ProviderError` by `onBodyError` (here rather than in a
 * `Stream.mapError` stage of its own: every stage costs per request). After `[DONE]` the final
 * chunks go out at once and the rest of the body is read and ignored up to its end (as the
 * official OpenAI client does), so the connection can be reused instead of being torn down
 * mid-response; a failure after `[DONE]` no longer matters.
 */
export const decodeChannel = <E>(
  providerId: string,
  metadata: Record<string, string> | undefined,
  secret: string | undefined,
  maxEventSize: number,
  tools: ReadonlyArray<ToolDefinition> | undefined,
  onBodyError: (error: E) => ProviderError
): Channel.Channel<Chunk.Chunk<ChatChunk>, Chunk.Chunk<Uint8Array>, ProviderError, E, void, unknown> =>
  Channel.suspend(() => {
    type Decoding = Channel.Channel<Chunk.Chunk<ChatChunk>, Chunk.Chunk<Uint8Array>, ProviderError, E, void, unknown>
    const decoder = new StreamDecoder(providerId, metadata, secret, maxEventSize, tools)
    const emit = (result: ProviderError | Array<ChatChunk>, then: Decoding): Decoding => {
      if (!Array.isArray(result)) return Channel.fail(result)
      if (result.length === 0) return then
      return Channel.zipRight(Channel.write(Chunk.unsafeFromArray(result)), then)
    }
    const drain: Decoding = Channel.readWithCause({
      onInput: () => drain,
      onFailure: () => Channel.void,
      onDone: () => Channel.void
    })
    const loop: Decoding = Channel.readWithCause({
      onInput: (input: Chunk.Chunk<Uint8Array>) => emit(decoder.feed(input), decoder.done ? drain : loop),
      onFailure: (cause) => Channel.failCause(Cause.map(cause, onBodyError)),
      onDone: () => emit(decoder.end(), Channel.void)
    })
    return loop
  })

/** A read of a body or an answer: the next chunk, `undefined` at the end, or the failure. */
export type Next<A, E> = Effect.Effect<Chunk.Chunk<A> | undefined, E>

/**
 * The same decoding as `decodeChannel`, as reads over reads of body bytes: what `Resilience`
 * reads when the provider offers it, and what `makeRaw` streams when the body is read directly,
 * with no stream stage between the body and the caller. A read that decodes nothing (a partial
 * line) reads on while the body has more at hand, else gives an empty chunk (so that a read the
 * caller knew to be `ready` never waits).
 */
export const decodeNext = <E>(
  body: Next<Uint8Array, E>,
  providerId: string,
  metadata: Record<string, string> | undefined,
  secret: string | undefined,
  maxEventSize: number,
  tools: ReadonlyArray<ToolDefinition> | undefined,
  onBodyError: (error: E) => ProviderError,
  bodyReady: () => boolean = never
): Decoded =>
  new DecodingReader(body, new StreamDecoder(providerId, metadata, secret, maxEventSize, tools), onBodyError, bodyReady)

/** Decoded reads, and whether the next one completes without waiting. */
export interface Decoded {
  readonly next: Next<ChatChunk, ProviderError>
  readonly ready: () => boolean
}

const never = () => false

const end = Effect.succeed(undefined)
const empty = Effect.succeed(Chunk.empty<ChatChunk>())

class DecodingReader<E> implements Decoded {
  private ended = false
  private readonly bodyReady: () => boolean
  private readonly decoder: StreamDecoder
  private readonly onBodyError: (error: E) => ProviderError
  private readonly decoding: Next<ChatChunk, ProviderError>
  private readonly draining: Next<ChatChunk, ProviderError>
  readonly next: Next<ChatChunk, ProviderError>

  constructor(
    body: Next<Uint8Array, E>,
    decoder: StreamDecoder,
    onBodyError: (error: E) => ProviderError,
    bodyReady: () => boolean
  ) {
    this.bodyReady = bodyReady
    this.decoder = decoder
    this.onBodyError = onBodyError
    this.decoding = Effect.matchEffect(body, {
      onFailure: (error) => {
        this.ended = true
        return Effect.fail(this.onBodyError(error))
      },
      onSuccess: (bytes) => {
        if (bytes !== undefined) return this.emit(this.decoder.feed(bytes))
        this.ended = true
        return this.emit(this.decoder.end())
      }
    })
    // After `[DONE]`: read the rest of the body and ignore it, failures included (reading on
    // only while that does not wait, as below).
    this.draining = Effect.matchEffect(body, {
      onFailure: () => this.stop(),
      onSuccess: (bytes) => bytes === undefined ? this.stop() : this.bodyReady() ? this.draining : empty
    })
    this.next = Effect.suspend(() => this.ended ? end : this.decoder.done ? this.draining : this.decoding)
  }

  readonly ready = (): boolean => this.ended || this.bodyReady()

  private stop(): Next<ChatChunk, ProviderError> {
    this.ended = true
    return end
  }

  private emit(result: ProviderError | Array<ChatChunk>): Next<ChatChunk, ProviderError> {
    if (!Array.isArray(result)) {
      this.ended = true
      return Effect.fail(result)
    }
    if (result.length > 0) return Effect.succeed(Chunk.unsafeFromArray(result))
    if (this.ended) return end
    // Nothing decoded yet (a partial line): read on, unless that would wait, which a read that
    // was `ready` must not do; an empty chunk then hands the wait back to the caller.
    return this.bodyReady() ? this.next : empty
  }
}

/**
 * Streams reads as one channel: each read that has something is written out, until the end
 * (`undefined`).
 */
export const nextChannel = <A, E>(
  next: Next<A, E>
): Channel.Channel<Chunk.Chunk<A>, unknown, E, unknown, void, unknown> => {
  const loop: Channel.Channel<Chunk.Chunk<A>, unknown, E, unknown, void, unknown> = Channel.flatMap(
    Channel.fromEffect(next),
    (chunk) => chunk === undefined ? Channel.void : chunk.length === 0 ? loop : Channel.zipRight(Channel.write(chunk), loop)
  )
  return loop
}
