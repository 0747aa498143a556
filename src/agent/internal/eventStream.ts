/**
 * A run's events as a stream: the run's body works in a fiber of its own and hands its events
 * to the stream's reader through a bounded buffer. One stream stage and no queue: the body
 * pushes into an array and wakes the reader; the reader takes the whole array at a time.
 */
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"

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
): Stream.Stream<A, E, R> =>
  Stream.fromChannel(Channel.suspend(() => {
    const pipe = new Pipe<A, E>(capacity)
    let fiber: Fiber.RuntimeFiber<void, E> | undefined
    // A daemon, not a child of the fiber that pulls first (that one may not read to the end):
    // the stream's own finalizer below stops it. Forked uninterruptibly up to the assignment,
    // so that finalizer always knows the fiber; the body itself is always interruptible.
    const start = Effect.uninterruptible(
      Effect.map(
        Effect.forkDaemon(Effect.onExit(Effect.interruptible(body(pipe)), (exit) => pipe.end(exit))),
        (forked) => {
          fiber = forked
        }
      )
    )
    const loop: Channel.Channel<Chunk.Chunk<A>, unknown, E, unknown, void, unknown> = Channel.flatMap(
      Channel.fromEffect(pipe.next),
      (chunk) => chunk === undefined ? Channel.void : Channel.zipRight(Channel.write(chunk), loop)
    )
    return Channel.ensuring(
      Channel.zipRight(Channel.fromEffect(start), loop),
      Effect.suspend(() => (fiber === undefined || pipe.ended ? Effect.void : Fiber.interrupt(fiber)))
    )
  }))

class Pipe<A, E> implements Emitter<A> {
  private buffer: Array<A> = []
  private exit: Exit.Exit<void, E> | undefined = undefined
  private wakeReader: ((effect: Effect.Effect<void>) => void) | undefined = undefined
  private wakeWriter: ((effect: Effect.Effect<void>) => void) | undefined = undefined

  constructor(private readonly capacity: number) {}

  /** Whether the body has ended (its events may still be unread). */
  get ended(): boolean {
    return this.exit !== undefined
  }

  readonly emit = (event: A): Effect.Effect<void> =>
    Effect.suspend(() => {
      this.buffer.push(event)
      return this.pushed()
    })

  readonly emitAll = (events: Iterable<A>): Effect.Effect<void> =>
    Effect.suspend(() => {
      for (const event of events) this.buffer.push(event)
      return this.pushed()
    })

  end(exit: Exit.Exit<void, E>): Effect.Effect<void> {
    return Effect.sync(() => {
      this.exit = exit
      this.signalReader()
    })
  }

  /** The events so far, waiting while there are none; `undefined` once the body is done. */
  readonly next: Effect.Effect<Chunk.Chunk<A> | undefined, E> = Effect.suspend(() => {
    if (this.buffer.length > 0) {
      const chunk = Chunk.unsafeFromArray(this.buffer)
      this.buffer = []
      const writer = this.wakeWriter
      if (writer !== undefined) {
        this.wakeWriter = undefined
        writer(Effect.void)
      }
      return Effect.succeed(chunk)
    }
    const exit = this.exit
    if (exit !== undefined) return Exit.isSuccess(exit) ? Effect.succeed(undefined) : Effect.failCause(exit.cause)
    return Effect.zipRight(this.waitForEvents, this.next)
  })

  // Checked again as the wait begins: the reader may have yielded since `next` looked, and an
  // emit or the end meanwhile found no reader to wake.
  private readonly waitForEvents: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (this.buffer.length > 0 || this.exit !== undefined) return resume(Effect.void)
    this.wakeReader = resume
    return Effect.sync(() => {
      this.wakeReader = undefined
    })
  })

  private readonly waitForRoom: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (this.buffer.length < this.capacity) return resume(Effect.void)
    this.wakeWriter = resume
    return Effect.sync(() => {
      this.wakeWriter = undefined
    })
  })

  private pushed(): Effect.Effect<void> {
    this.signalReader()
    return this.buffer.length >= this.capacity ? this.waitForRoom : Effect.void
  }

  private signalReader(): void {
    const reader = this.wakeReader
    if (reader !== undefined) {
      this.wakeReader = undefined
      reader(Effect.void)
    }
  }
}
