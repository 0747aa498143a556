/**
 * Bounds each read of an answer with one timer per answer: the running read is a fiber of its
 * own, and the timer interrupts it when it is due. With Effect's own clock the timer is a
 * `setTimeout`; with another clock (a `TestClock`, say) it is a watchdog fiber sleeping on that
 * clock. Racing every read against a sleep cost more than the whole SSE decoding of a read, and
 * this runs for every read of every model call, so it is written out by hand.
 *
 * A read either starts a new wait (the first of an attempt, or the first after a chunk reached
 * the caller), whose deadline the caller gives, or goes on with the deadline of the read before
 * it: a read that decoded nothing does not move the deadline.
 */
import type * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import type { ProviderError } from "../../domain/Errors.js"
import type { ChatChunk } from "../../domain/Message.js"
import type { ModelError } from "../LanguageModel.js"

/** Which bound a wait is under. */
export type TimeoutKind = "first" | "idle" | "request"

/** One read of an answer. */
export type Next = Effect.Effect<Chunk.Chunk<ChatChunk> | undefined, ModelError>

type ReadFiber = Fiber.RuntimeFiber<Chunk.Chunk<ChatChunk> | undefined, ModelError>

// Effect's own clock: its sleeps are `setTimeout`s, so a timer can be one too.
const liveClock = Object.getPrototypeOf(Clock.make())
const maxTimerMs = 2 ** 31 - 1

/** The timer of one answer's reads. */
export class ReadTimer {
  private readonly live: boolean
  /** The running read, when it is due and what its timeout is called. */
  private current: ReadFiber | undefined
  private due = 0
  private kind: TimeoutKind = "first"
  private fired: { readonly read: ReadFiber; readonly error: ProviderError } | undefined
  /** When the timer fires next; Infinity when none is set. */
  private armedUntil = Infinity
  private timer: ReturnType<typeof setTimeout> | undefined
  private watchdog: Fiber.RuntimeFiber<void> | undefined

  constructor(
    readonly clock: Clock.Clock,
    private readonly timeoutError: (kind: TimeoutKind) => ProviderError
  ) {
    this.live = Object.getPrototypeOf(clock) === liveClock
  }

  /** Starts a new wait, due `ms` from now, under `kind`. */
  startWait(kind: TimeoutKind, ms: number): void {
    this.kind = kind
    this.due = this.clock.unsafeCurrentTimeMillis() + ms
  }

  /** Runs `read` in a fiber of its own, interrupted with the wait's timeout error when due. */
  timed(read: Next): Next {
    return Effect.flatMap(Effect.fork(read), (fiber) => {
      this.current = fiber
      const settled = Effect.flatMap(Fiber.await(fiber), (exit): Next => {
        this.current = undefined
        const timedOut = this.fired !== undefined && this.fired.read === fiber ? this.fired.error : undefined
        this.fired = undefined
        return Exit.isSuccess(exit) || timedOut === undefined ? exit : Effect.fail(timedOut)
      })
      if (this.due >= this.armedUntil) return settled
      if (!this.live) return Effect.zipRight(this.rearm, settled)
      this.setTimer(this.clock.unsafeCurrentTimeMillis())
      return settled
    })
  }

  /** Stops the running read and the timer. */
  readonly stop: Effect.Effect<void> = Effect.suspend(() => {
    const running = this.current
    const sleeping = this.watchdog
    this.current = undefined
    this.watchdog = undefined
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    return Effect.zipRight(
      running === undefined ? Effect.void : Fiber.interrupt(running),
      sleeping === undefined ? Effect.void : Fiber.interrupt(sleeping)
    )
  })

  /** Whether the running read is due: if so `fired` says which and why. */
  private expire(now: number): boolean {
    if (this.current === undefined || now < this.due) return false
    this.fired = { read: this.current, error: this.timeoutError(this.kind) }
    return true
  }

  private readonly onTimer = () => {
    this.timer = undefined
    this.armedUntil = Infinity
    if (this.current === undefined) return
    const now = this.clock.unsafeCurrentTimeMillis()
    if (this.expire(now)) this.fired!.read.unsafeInterruptAsFork(FiberId.none)
    else this.setTimer(now)
  }

  private setTimer(now: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.armedUntil = this.due
    this.timer = setTimeout(this.onTimer, Math.min(this.due - now, maxTimerMs))
  }

  private readonly watch: Effect.Effect<void> = Effect.suspend(() => {
    const now = this.clock.unsafeCurrentTimeMillis()
    if (this.current === undefined || now >= this.due) {
      this.armedUntil = Infinity
      this.watchdog = undefined
      return this.expire(now) ? Fiber.interrupt(this.fired!.read) : Effect.void
    }
    this.armedUntil = this.due
    return Effect.zipRight(this.clock.sleep(Duration.millis(this.due - now)), this.watch)
  })

  private readonly rearm: Effect.Effect<void> = Effect.suspend(() => {
    const previous = this.watchdog
    this.armedUntil = this.due
    return Effect.flatMap(Effect.forkDaemon(this.watch), (fiber) => {
      this.watchdog = fiber
      return previous === undefined ? Effect.void : Fiber.interruptFork(previous)
    })
  })
}
