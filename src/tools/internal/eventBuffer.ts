/**
 * The events of a run on their way to the one fiber that reads them. Writers (handler fibers, an
 * SDK's callbacks, a body fiber) push; the reader takes everything buffered as one chunk, and
 * when there is nothing to take it waits until a push, or until the run signals `wake` for news
 * that is not an event (a call ended so another may start, an answer arrived to be settled).
 * With a `capacity`, a writer that offers waits while that many events are unread.
 *
 * Written by hand rather than on `Mailbox` or `Queue`, for two reasons. The reader must also
 * wake for news besides events, which those primitives can only carry as sentinel elements. And
 * they cost more where it matters: a call of an instant local tool is two pushes and one take.
 * With a `Mailbox` in the local tools' run (made per run, `unsafeOffer`, `takeAll`), the tools
 * benchmark (`npm run bench:tools`, alternating rounds) measured the toolbox's direct path one
 * call at a time at 1.25 to 1.5 times the CPU per event of this buffer, and a batch about the
 * same: making one per run is an effect, and every offer schedules a task to release a waiting
 * taker, which then resumes a scheduler tick later.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"

type Resume = (effect: Effect.Effect<void>) => void

export class EventBuffer<A> {
  private items: Array<A> = []
  private reader: Resume | undefined = undefined
  private writer: Resume | undefined = undefined

  /**
   * @param hasNews whether the reader has something to do besides taking events (the run
   *   ended, say); looked at whenever the reader is about to wait.
   * @param capacity how many unread events make a writer that `offer`s wait.
   */
  constructor(
    private readonly hasNews: () => boolean = never,
    private readonly capacity: number = Infinity
  ) {}

  /** How many events wait to be taken. */
  get size(): number {
    return this.items.length
  }

  /** Adds an event now, waking the reader. */
  push(item: A): void {
    this.items.push(item)
    this.wake()
  }

  /** Adds an event; the returned effect waits while `capacity` events are unread. */
  offer(item: A): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.push(item)
      return this.items.length >= this.capacity ? this.waitForRoom : Effect.void
    })
  }

  /** Adds events; the returned effect waits while `capacity` events are unread. */
  offerAll(items: Iterable<A>): Effect.Effect<void> {
    return Effect.suspend(() => {
      for (const item of items) this.items.push(item)
      this.wake()
      return this.items.length >= this.capacity ? this.waitForRoom : Effect.void
    })
  }

  /** Everything buffered as one chunk, or `undefined` when there is nothing; a waiting writer goes on. */
  take(): Chunk.Chunk<A> | undefined {
    if (this.items.length === 0) return undefined
    const chunk = Chunk.unsafeFromArray(this.items)
    this.items = []
    const writer = this.writer
    if (writer !== undefined) {
      this.writer = undefined
      writer(Effect.void)
    }
    return chunk
  }

  /** Wakes the reader if it waits: there is news besides events (see `hasNews`). */
  wake(): void {
    const reader = this.reader
    if (reader !== undefined) {
      this.reader = undefined
      reader(Effect.void)
    }
  }

  /**
   * The reader's wait, until there are events or news. Both are looked at again as the wait
   * begins: the reader may have yielded since it last looked, and a push or a `wake` meanwhile
   * found no reader to wake.
   */
  readonly waitForNews: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (this.items.length > 0 || this.hasNews()) return resume(Effect.void)
    this.reader = resume
    return Effect.sync(() => {
      this.reader = undefined
    })
  })

  private readonly waitForRoom: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (this.items.length < this.capacity) return resume(Effect.void)
    this.writer = resume
    return Effect.sync(() => {
      this.writer = undefined
    })
  })
}

const never = (): boolean => false
