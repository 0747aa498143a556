/**
 * Decodes a streamed chat completion (Server-Sent Events of `chat.completion.chunk`s) into
 * `ChatChunk`s. This is the hot path of streaming, so it avoids Schema decoding per event: each
 * event is `JSON.parse`d once and read with light checks.
 */
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import type { ProviderError } from "../../domain/Errors.js"
import type { ChatChunk, FinishReason, Usage } from "../../domain/Message.js"
import { fromInBand, invalidResponse, truncated } from "./openaiErrors.js"
import { finishReason as toFinishReason, toolCall, usage as toUsage } from "./openaiWire.js"
import { SseEvents } from "./sseEvents.js"

interface OpenCall {
  readonly id: string
  readonly name: string
  readonly index: number
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
    private readonly secret: string | undefined
  ) {
    this.events = new SseEvents((event, data) => {
      this.onEvent(event, data)
      return !this.done && this.error === undefined
    })
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
      : invalidResponse(this.providerId, `a stream event exceeded ${failure.cause.maxEventSize} characters`)
  }

  end(): ProviderError | Array<ChatChunk> {
    if (!this.done && this.error === undefined) {
      this.feedText(this.text.decode() + "\n\n")
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
        call = { id: typeof fragment.id === "string" ? fragment.id : `call_${index}`, name: fn.name, index, args: "" }
        this.calls.set(index, call)
        this.sawToolCalls = true
        this.out.push({ _tag: "tool-call-start", index, id: call.id, name: call.name })
      }
      const args = fn?.arguments
      if (typeof args === "string" && args !== "") {
        call.args += args
        this.out.push({ _tag: "tool-call-delta", index, argumentsDelta: args })
      }
    }
  }

  private endCalls(): void {
    for (const call of this.calls.values()) {
      this.out.push({ _tag: "tool-call-end", index: call.index, toolCall: toolCall(call.id, call.name, call.args) })
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
 * and with `Truncated` when the body ends before `[DONE]` and without a finish reason. After
 * `[DONE]` the final chunks go out at once and the rest of the body is read and ignored up to
 * its end (as the official OpenAI client does), so the connection can be reused instead of
 * being torn down mid-response; a failure after `[DONE]` no longer matters.
 */
export const decodeChannel = <E>(
  providerId: string,
  metadata: Record<string, string> | undefined,
  secret: string | undefined
): Channel.Channel<Chunk.Chunk<ChatChunk>, Chunk.Chunk<Uint8Array>, ProviderError | E, E, void, unknown> =>
  Channel.suspend(() => {
    type Decoding = Channel.Channel<Chunk.Chunk<ChatChunk>, Chunk.Chunk<Uint8Array>, ProviderError | E, E, void, unknown>
    const decoder = new StreamDecoder(providerId, metadata, secret)
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
      onFailure: (cause) => Channel.failCause(cause),
      onDone: () => emit(decoder.end(), Channel.void)
    })
    return loop
  })
