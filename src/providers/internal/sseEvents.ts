/**
 * Server-Sent Events from decoded text, through `@effect/experimental`'s `Sse.makeParser`, with
 * one fast path measured to matter.
 *
 * Why not the parser alone: `Sse.makeParser` rescans its buffer from the start for every line it
 * finds, which is quadratic in the size of one network read (a 64 KiB read of small events took
 * seconds), and even fed line by line its character loop costs about as much as the
 * `JSON.parse` of each event. So the splitter feeds the parser one line at a time, and the one
 * shape model servers send for almost every event — a single `data:` line (no CR) followed by a
 * blank line, arriving while the parser holds nothing pending — is dispatched directly. Every
 * other line (comments, `event:`, `id:`, `retry:`, multi-line data, CRLF or CR line endings, a
 * BOM, a line split across reads) goes through the parser, so SSE semantics stay the parser's.
 */
import * as Sse from "@effect/experimental/Sse"

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

  constructor(private readonly onEvent: OnEvent) {
    this.parser = Sse.makeParser((event) => {
      if (event._tag === "Event" && !this.stopped && !onEvent(event.event, event.data)) this.stopped = true
    })
  }

  feed(text: string): Sse.SseError | undefined {
    let start = this.pendingCR && text.charCodeAt(0) === 10 ? 1 : 0
    const length = text.length
    this.pendingCR = false
    while (start < length && !this.stopped) {
      const newline = text.indexOf("\n", start)
      if (newline < 0) {
        this.clean = false
        this.partial = true
        this.pendingCR = text.charCodeAt(length - 1) === 13
        return this.parser.feed(start === 0 ? text : text.slice(start))
      }
      if (this.clean && text.charCodeAt(newline + 1) === 10 && text.startsWith("data:", start)) {
        const valueStart = text.charCodeAt(start + 5) === 32 ? start + 6 : start + 5
        const value = text.slice(valueStart, newline)
        if (value.indexOf("\r") < 0) {
          if (!this.onEvent("message", value)) this.stopped = true
          start = newline + 2
          continue
        }
      }
      const line = text.slice(start, newline + 1)
      const failure = this.parser.feed(line)
      if (failure !== undefined) return failure
      // A blank line ends the pending event; a CR inside a line may hide further line breaks.
      this.clean = !this.partial && (line === "\n" || line === "\r\n")
      this.partial = false
      start = newline + 1
    }
    return undefined
  }
}
