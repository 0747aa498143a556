/**
 * A run's events as a stream: the run's body works in a fiber of its own and hands its events
 * to the stream's reader through a bounded `EventBuffer`, read as `Reads` in one stream stage.
 */
import type * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Stream from "effect/Stream"
import { EventBuffer } from "../../tools/internal/eventBuffer.js"
import * as Reads from "../../tools/internal/reads.js"

/** How a body hands out its events. */
export interface Emitter<A> {
  readonly emit: (event: A) => Effect.Effect<void>
  readonly emitAll: (events: Iterable<A>) => Effect.Effect<void>
}

/**
 * Runs `body` in a fiber tied to the stream's reader: events it emits are the stream's
 * elements, its failure is the stream's failure, and when the reader stops (done, taking fewer
 * elements, or interrupted) the fiber is interrupted — and with it everything it has in
 * flight. When `capacity` events wait unread, the body waits for the reader before going on.
 */
export const eventStream = <A, E, R>(
  body: (emitter: Emitter<A>) => Effect.Effect<void, E, R>,
  capacity = 256
): Stream.Stream<A, E, R> => Reads.toStream(() => new BodyRun(body, capacity))

class BodyRun<A, E, R> implements Emitter<A>, Reads.Reads<A, E, R> {
  private readonly buffer: EventBuffer<A>
  private exit: Exit.Exit<void, E> | undefined = undefined
  private fiber: Fiber.RuntimeFiber<void, E> | undefined = undefined

  constructor(private readonly body: (emitter: Emitter<A>) => Effect.Effect<void, E, R>, capacity: number) {
    this.buffer = new EventBuffer<A>(() => this.exit !== undefined, capacity)
  }

  readonly emit = (event: A): Effect.Effect<void> => this.buffer.offer(event)

  readonly emitAll = (events: Iterable<A>): Effect.Effect<void> => this.buffer.offerAll(events)

  get done(): boolean {
    return this.exit !== undefined && Exit.isSuccess(this.exit) && this.buffer.size === 0
  }

  /** The events so far, waiting while there are none; `undefined` once the body is done. */
  readonly next: Effect.Effect<Chunk.Chunk<A> | undefined, E, R> = Effect.suspend(() => {
    if (this.fiber === undefined) return Effect.zipRight(this.start, this.next)
    const chunk = this.buffer.take()
    if (chunk !== undefined) return Effect.succeed(chunk)
    const exit = this.exit
    if (exit !== undefined) return Exit.isSuccess(exit) ? Effect.succeed(undefined) : Effect.failCause(exit.cause)
    return Effect.zipRight(this.buffer.waitForNews, this.next)
  })

  // A daemon, not a child of the fiber that pulls first (that one may not read to the end):
  // `close` stops it. Forked uninterruptibly up to the assignment, so `close` always knows the
  // fiber; the body itself is always interruptible.
  private readonly start: Effect.Effect<void, never, R> = Effect.uninterruptible(
    Effect.map(
      Effect.forkDaemon(Effect.onExit(Effect.interruptible(this.runBody()), (exit) => this.end(exit))),
      (forked) => {
        this.fiber = forked
      }
    )
  )

  private runBody(): Effect.Effect<void, E, R> {
    return Effect.suspend(() => this.body(this))
  }

  private end(exit: Exit.Exit<void, E>): Effect.Effect<void> {
    return Effect.sync(() => {
      this.exit = exit
      this.buffer.wake()
    })
  }

  close(): Effect.Effect<void> {
    return Effect.suspend(() =>
      this.fiber === undefined || this.exit !== undefined ? Effect.void : Fiber.interrupt(this.fiber)
    )
  }
}
