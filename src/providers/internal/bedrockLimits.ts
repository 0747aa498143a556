/**
 * `LanguageModel.ResponseLimits` for Bedrock. The AWS SDK reads response bodies itself (whole,
 * for a Converse answer and for an error), so the bounds are applied in the one place the body
 * passes through before the SDK sees it: the request handler. `BoundedHttpHandler` is the SDK's
 * own `NodeHttpHandler`, with each response body replaced before it is returned:
 *
 * - an answer read whole (a Converse response): read here up to `maxResponseBytes`, and past
 *   that abandoned (the socket destroyed) with `ResponseTooLarge`, which the SDK passes on;
 * - an error answer: read up to `maxErrorBodyBytes`; past that the rest is abandoned and the SDK
 *   is handed a short `{ "message" }` with an excerpt of what was read instead, so it still
 *   names the error from the `x-amzn-ErrorType` header (a `__type` in the cut-off part is lost);
 * - an event stream: passed through while each event-stream message, whose length its first four
 *   bytes declare, is checked against `maxEventBytes` before any of it is buffered (the SDK
 *   would allocate whatever length a message declares).
 *
 * What cannot be bounded here: nothing the SDK does after parsing (a Converse answer under the
 * bound is parsed and held as the SDK's objects, a few times its size in memory).
 *
 * @internal
 */
import { NodeHttpHandler } from "@smithy/node-http-handler"
import { Readable, Transform, type TransformCallback } from "node:stream"
import { pipeline } from "node:stream"
import { formatBytes, type Limits } from "./responseLimits.js"

/**
 * An answer past one of the bounds, as the handler fails with it; `toProviderError` makes it an
 * `InvalidResponse` that says which bound and how to raise it.
 *
 * @internal
 */
export class ResponseTooLarge extends Error {
  constructor(
    readonly what: string,
    readonly limit: "maxResponseBytes" | "maxEventBytes",
    readonly bytes: number
  ) {
    super(`Bedrock sent ${what} larger than ${formatBytes(bytes)} (${limit})`)
    this.name = "ResponseTooLarge"
  }
}

type Handled = Awaited<ReturnType<NodeHttpHandler["handle"]>>

/** The SDK's `NodeHttpHandler`, bounding what it reads of each response (see above). */
export class BoundedHttpHandler extends NodeHttpHandler {
  private readonly bounds: Limits

  constructor(bounds: Limits) {
    super()
    this.bounds = bounds
  }

  override async handle(...args: Parameters<NodeHttpHandler["handle"]>): Promise<Handled> {
    const handled = await super.handle(...args)
    const response = handled.response
    const body: unknown = response.body
    if (!(body instanceof Readable)) return handled
    const status = response.statusCode
    if (status < 200 || status >= 300) {
      const read = await readUpTo(body, this.bounds.maxErrorBodyBytes)
      response.body = bodyOf(read.complete ? read.bytes : cutErrorBody(read.bytes, this.bounds.maxErrorBodyBytes))
    } else if (isEventStream(response.headers)) {
      response.body = boundMessages(body, this.bounds.maxEventBytes)
    } else {
      const read = await readUpTo(body, this.bounds.maxResponseBytes)
      if (!read.complete) throw new ResponseTooLarge("an answer", "maxResponseBytes", this.bounds.maxResponseBytes)
      response.body = bodyOf(read.bytes)
    }
    return handled
  }
}

const isEventStream = (headers: Record<string, string>): boolean => {
  for (const name in headers) {
    if (name.toLowerCase() === "content-type") return headers[name]!.includes("application/vnd.amazon.eventstream")
  }
  return false
}

/** Reads a body up to `maxBytes`; a longer one is cut there and destroyed, the rest never read. */
const readUpTo = async (body: Readable, maxBytes: number): Promise<{ bytes: Buffer; complete: boolean }> => {
  const pieces: Array<Buffer> = []
  let size = 0
  // Leaving the loop early destroys the body.
  for await (const piece of body as AsyncIterable<Buffer>) {
    if (size + piece.length > maxBytes) {
      pieces.push(piece.subarray(0, maxBytes - size))
      return { bytes: Buffer.concat(pieces, maxBytes), complete: false }
    }
    pieces.push(piece)
    size += piece.length
  }
  return { bytes: Buffer.concat(pieces, size), complete: true }
}

const bodyOf = (bytes: Uint8Array): Readable => Readable.from([bytes], { objectMode: false })

const excerptLength = 300

// The usual AWS error body is `{"message": "..."}`: its opening is left out of the excerpt.
const messageOpening = /^\s*\{\s*"[Mm]essage"\s*:\s*"/

const cutErrorBody = (bytes: Buffer, maxBytes: number): Buffer => {
  const text = bytes.toString("utf8", 0, Math.min(bytes.length, excerptLength * 4)).replace(messageOpening, "")
    .replace(/\s+/g, " ")
  return Buffer.from(JSON.stringify({
    message: `${text.slice(0, excerptLength)}… (the error body was longer than ${formatBytes(maxBytes)}; ` +
      `the rest was not read)`
  }))
}

/**
 * Passes an event stream through, failing it with `ResponseTooLarge` as soon as a message
 * declares a length over `maxBytes`. Only the four length bytes at the start of each message
 * are looked at.
 */
const boundMessages = (body: Readable, maxBytes: number): Readable => {
  // Bytes left of the current message; while 0, the next message's length is being read.
  let remaining = 0
  let lengthBytes = 0
  let length = 0
  const checked = new Transform({
    transform(piece: Buffer, _encoding, callback: TransformCallback) {
      let offset = 0
      while (offset < piece.length) {
        if (remaining > 0) {
          const step = Math.min(remaining, piece.length - offset)
          remaining -= step
          offset += step
          continue
        }
        length = length * 256 + piece[offset]!
        offset++
        if (++lengthBytes < 4) continue
        if (length > maxBytes) {
          callback(new ResponseTooLarge("an event-stream message", "maxEventBytes", maxBytes))
          return
        }
        remaining = Math.max(0, length - 4)
        lengthBytes = 0
        length = 0
      }
      callback(null, piece)
    }
  })
  // A failure on either side ends both: the socket is destroyed and the SDK sees the error.
  pipeline(body, checked, () => {})
  return checked
}
