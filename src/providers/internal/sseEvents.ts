/**
 * Server-Sent Events from decoded text, through `@effect/experimental`'s `Sse.makeParser`, with
 * two changes to how it is fed, both measured to matter, and a bound on the size of an event.
 *
 * Why not the parser alone: `Sse.makeParser` rescans its buffer from the start for every line it
 * finds, which is quadratic in the size of one network read (a 64 KiB read of small events took
 * seconds), and even fed line by line its character loop costs about as much as the
 * `JSON.parse` of each event. So the splitter feeds the parser one line at a time, and the one
 * shape model servers send for almost every event — a single `data:` line (no CR) followed by a
 * blank line, arriving while the parser holds nothing pending — is dispatched directly. Every
 * other line (comments, `event:`, `id:`, `retry:`, multi-line data, CRLF or CR line endings, a
 * BOM) goes through the parser, so SSE semantics stay the parser's.
 *
 * A line split across reads is held here, in pieces, until its end arrives: the parser appends
 * each read to the part of the line it holds and scans the whole again, which is quadratic in
 * the length of one line. Only a piece with a CR in it goes to the parser at once, since a CR
 * alone may end a line.
 *
 * No line, and no event the parser assembles, may exceed `maxEventSize` characters: past it
 * `feed` fails as soon as the excess arrives, without waiting for the line to end.
 */
import * as Sse from "@effect/experimental/Sse"
import { defaultLimits } from "./responseLimits.js"

/** Receives each event; returns `false` to stop reading (the rest of the text is ignored). */
export type OnEvent = (event: string, data: string) => boolean

/** A chunk-safe SSE splitter; `feed` returns the parser's error when an event is too large. */
export class SseEvents {
  private readonly parser: Sse.Parser
  // True while the parser holds no partial line and no pending event fields.
  private clean = true
  // True while the parser holds the start of a line whose end has not arrived yet.
  private partial = false
  private stopped = false
  // The last text ended with CR: a LF opening the next text belongs to that CRLF, but the
  // parser forgets a CR between two feeds and would read the LF as a blank line.
  private pendingCR = false
  // The start of a line whose end has not arrived, held here instead of in the parser.
  private held: Array<string> = []
  private heldLength = 0

  constructor(private readonly onEvent: OnEvent, private readonly maxEventSize: number = defaultLimits.maxEventBytes) {
    this.parser = Sse.makeParser((event) => {
      if (event._tag === "Event" && !this.stopped && !onEvent(event.event, event.data)) this.stopped = true
    }, { maxEventSize })
  }

  feed(text: string): Sse.SseError | undefined {
    let start = this.pendingCR && text.charCodeAt(0) === 10 ? 1 : 0
    const length = text.length
    this.pendingCR = false
    while (start < length && !this.stopped) {
      const newline = text.indexOf("\n", start)
      if (newline < 0) return this.hold(start === 0 ? text : text.slice(start))
      if (this.heldLength + newline - start > this.maxEventSize) return this.tooLarge()
      let line: string | undefined
      if (this.heldLength > 0) line = this.takeHeld(text.slice(start, newline + 1))
      if (this.clean && text.charCodeAt(newline + 1) === 10) {
        // The fast path, read in place when the line is all in this text.
        const source = line ?? text
        const from = line === undefined ? start : 0
        const end = line === undefined ? newline : line.length - 1
        if (source.startsWith("data:", from)) {
          const value = source.slice(source.charCodeAt(from + 5) === 32 ? from + 6 : from + 5, end)
          if (value.indexOf("\r") < 0) {
            if (!this.onEvent("message", value)) this.stopped = true
            start = newline + 2
            continue
          }
        }
      }
      line ??= text.slice(start, newline + 1)
      const failure = this.parser.feed(line)
      if (failure !== undefined) return failure
      // A blank line ends the pending event; a CR inside a line may hide further line breaks.
      this.clean = !this.partial && (line === "\n" || line === "\r\n")
      this.partial = false
      start = newline + 1
    }
    return undefined
  }

  /** Keeps the start of a line until its end arrives. */
  private hold(piece: string): Sse.SseError | undefined {
    this.pendingCR = piece.charCodeAt(piece.length - 1) === 13
    if (this.partial || piece.indexOf("\r") >= 0) {
      this.clean = false
      this.partial = true
      return this.parser.feed(this.heldLength > 0 ? this.takeHeld(piece) : piece)
    }
    if (this.heldLength + piece.length > this.maxEventSize) return this.tooLarge()
    this.held.push(piece)
    this.heldLength += piece.length
    return undefined
  }

  private takeHeld(last: string): string {
    this.held.push(last)
    const line = this.held.join("")
    this.held = []
    this.heldLength = 0
    return line
  }

  private tooLarge(): Sse.SseError {
    this.stopped = true
    this.held = []
    this.heldLength = 0
    return new Sse.SseError({ cause: new Sse.EventTooLarge({ maxEventSize: this.maxEventSize }) })
  }
}
