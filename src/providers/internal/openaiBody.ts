/**
 * Reading a streamed response body with as little machinery as possible.
 *
 * `HttpClientResponse.stream` is a `Stream`, and a stream costs a channel executor to read, with
 * several stages of its own (a suspend, an `ensuring` that aborts the request, the readable's
 * adapter with its latch): measured on undici, reading a small SSE answer through it costs more
 * CPU than the whole HTTP exchange. Every model call reads one body, so when the response is
 * backed by a Node `Readable` (`NodeHttpClient.layerUndici`, which the kernel uses) the body is
 * read from that `Readable` directly, with the same semantics the platform's adapter has: data
 * as it arrives, the end, a failure mapped to the caller's error, and a body that is not read to
 * its end destroyed (which makes undici abort the request and close the socket). Any other
 * response (another client, or a platform version whose response has another shape) is read
 * through `response.stream` as before; `test/providers/OpenAiCompatible.test.ts` checks that the
 * direct path is the one taken with undici, so a platform upgrade that changes the shape fails a
 * test instead of silently costing time.
 */
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { Readable } from "node:stream"

/**
 * The undici body behind a response from `@effect/platform-node`'s undici client, or
 * `undefined` when the response is anything else. The platform wraps its response in one that
 * aborts the request when the body stream ends (`original`, unless the request is scoped);
 * the undici response keeps undici's own answer as `source`, whose `body` is the `Readable`.
 */
export const nodeBody = (response: HttpClientResponse.HttpClientResponse): Readable | undefined => {
  const inner = (response as { readonly original?: unknown }).original ?? response
  const source = (inner as { readonly source?: unknown }).source
  if (typeof source !== "object" || source === null || source instanceof Readable) return undefined
  const body = (source as { readonly body?: unknown }).body
  return body instanceof Readable && !body.destroyed && !body.readableEnded && !body.readableDidRead ? body : undefined
}

/**
 * One body read from its `Readable`. `next` gives what arrived since the last read (waiting
 * when nothing did), `undefined` at the end, or fails with `onError` of the stream's error; a
 * body that closes without ending fails too. `close` detaches, and destroys a body that was not
 * read to its end. The response is held until then: the platform aborts the request of a
 * response that is garbage-collected before its body was read.
 */
export class BodyReader<E> {
  private ended = false
  private failure: { readonly cause: unknown } | undefined
  private waiter: ((effect: Effect.Effect<Chunk.Chunk<Uint8Array> | undefined, E>) => void) | undefined
  private readonly readable: Readable
  private readonly onError: (cause: unknown) => E
  private response: HttpClientResponse.HttpClientResponse | undefined
  readonly next: Effect.Effect<Chunk.Chunk<Uint8Array> | undefined, E>

  constructor(readable: Readable, response: HttpClientResponse.HttpClientResponse, onError: (cause: unknown) => E) {
    this.readable = readable
    this.response = response
    this.onError = onError
    readable.on("readable", this.wake)
    readable.on("end", this.onEnd)
    readable.on("error", this.onFailure)
    readable.on("close", this.onClose)
    const wait = Effect.async<Chunk.Chunk<Uint8Array> | undefined, E>((resume) => {
      this.waiter = resume
      return Effect.sync(() => {
        this.waiter = undefined
      })
    })
    this.next = Effect.suspend(() => this.take() ?? wait)
  }

  /** Whether `next` completes without waiting. */
  readonly ready = (): boolean => this.readable.readableLength > 0 || this.failure !== undefined || this.atEnd()

  /**
   * Whether the body is over: `end` was emitted, or the end of the data has arrived and all of it
   * was read (`end` follows on the next tick; Node reports that only as the state's `ended`).
   */
  private atEnd(): boolean {
    if (this.ended) return true
    const readable = this.readable as Readable & { readonly _readableState?: { readonly ended?: unknown } }
    return readable.readableLength === 0 && readable._readableState?.ended === true
  }

  /** What can be answered now, or `undefined` when the next read has to wait. */
  private take(): Effect.Effect<Chunk.Chunk<Uint8Array> | undefined, E> | undefined {
    let piece: Uint8Array | null = this.readable.read()
    if (piece !== null) {
      const pieces = [piece]
      while ((piece = this.readable.read()) !== null) pieces.push(piece)
      return Effect.succeed(Chunk.unsafeFromArray(pieces))
    }
    if (this.failure !== undefined) return Effect.fail(this.onError(this.failure.cause))
    if (this.atEnd()) return Effect.succeed(undefined)
    return undefined
  }

  private readonly wake = () => {
    if (this.waiter === undefined) return
    const effect = this.take()
    if (effect === undefined) return
    const resume = this.waiter
    this.waiter = undefined
    resume(effect)
  }

  private readonly onEnd = () => {
    this.ended = true
    this.wake()
  }

  private readonly onFailure = (cause: unknown) => {
    this.failure ??= { cause }
    this.wake()
  }

  private readonly onClose = () => {
    if (!this.ended) this.failure ??= { cause: new Error("the response body closed before its end") }
    this.wake()
  }

  /** Detaches, and destroys the body unless it was read to its end (undici then aborts). */
  readonly close: Effect.Effect<void> = Effect.sync(() => {
    const readable = this.readable
    readable.off("readable", this.wake)
    readable.off("end", this.onEnd)
    readable.off("close", this.onClose)
    // The error listener stays: destroying an unfinished body emits an error nobody else awaits.
    // A body that is over is left to emit `end` by itself: destroying it first would only make
    // undici build an abort error (with its stack trace) for a request that is complete.
    if (!readable.destroyed && (this.failure !== undefined || !this.atEnd())) readable.destroy()
    if (this.response !== undefined) this.response = undefined
  })
}

/** A body read up to a bound: what was read, and whether that was all of it. */
export interface Bounded {
  readonly text: string
  readonly complete: boolean
}

const utf8 = new TextDecoder()

/**
 * Reads a body up to `maxBytes` and stops there: a larger body is cut (its text is its first
 * `maxBytes` bytes, `complete` is false) and the rest is never read, the request aborted. A body
 * read to its end leaves its connection to be reused. Undici's `Readable` is read directly, as
 * above; any other response through `response.stream`. A failure of the body is `onError` of
 * its cause.
 */
export const readBounded = <E>(
  response: HttpClientResponse.HttpClientResponse,
  maxBytes: number,
  onError: (cause: unknown) => E
): Effect.Effect<Bounded, E> => {
  const readable = nodeBody(response)
  if (readable !== undefined) {
    return Effect.acquireUseRelease(
      Effect.sync(() => new BodyReader(readable, response, onError)),
      (reader) => collectBounded(reader.next, maxBytes),
      (reader) => reader.close
    )
  }
  return Effect.scoped(Effect.flatMap(
    Channel.toPull(Stream.toChannel(response.stream)),
    (pull) =>
      collectBounded(
        Effect.mapBoth(pull, {
          onFailure: (error: HttpClientError.ResponseError) => onError(error.cause ?? error),
          onSuccess: (read) => read._tag === "Right" ? read.right : undefined
        }),
        maxBytes
      )
  ))
}

const collectBounded = <E>(
  next: Effect.Effect<Chunk.Chunk<Uint8Array> | undefined, E>,
  maxBytes: number
): Effect.Effect<Bounded, E> =>
  Effect.suspend(() => {
    const pieces: Array<Uint8Array> = []
    let size = 0
    const done = (complete: boolean): Bounded => ({
      text: pieces.length === 1 ? utf8.decode(pieces[0]) : utf8.decode(Buffer.concat(pieces, size)),
      complete
    })
    const loop: Effect.Effect<Bounded, E> = Effect.flatMap(next, (chunk) => {
      if (chunk === undefined) return Effect.succeed(done(true))
      for (const piece of chunk) {
        if (size + piece.length > maxBytes) {
          pieces.push(piece.subarray(0, maxBytes - size))
          size = maxBytes
          return Effect.succeed(done(false))
        }
        pieces.push(piece)
        size += piece.length
      }
      return loop
    })
    return loop
  })
