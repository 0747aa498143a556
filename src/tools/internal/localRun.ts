/**
 * A run of local tool calls behind one read (`Reads`). Each handler runs in its own fiber,
 * started at once (an instant handler finishes before `launch` returns, so its events go out in
 * the same chunk); its events collect in an `EventBuffer` the reader drains on each pull,
 * waiting only when it is empty. One timer fiber, armed only for handlers still running after
 * their first step, stops the calls whose time is up.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import type * as Chunk from "effect/Chunk"
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as Runtime from "effect/Runtime"
import * as Tracer from "effect/Tracer"
import type { ToolError } from "../../domain/Errors.js"
import { timestampOf, type ToolEvent } from "../../domain/Events.js"
import type { ExecutionContext } from "../../domain/ExecutionContext.js"
import type { ToolCall } from "../../domain/Message.js"
import { recording } from "../../internal/tracing.js"
import type { LocalTool } from "../LocalTools.js"
import type { Reads, RunOptions } from "../ToolProvider.js"
import * as CallEvents from "./callEvents.js"
import { EventBuffer } from "./eventBuffer.js"
import { callBody } from "./localCall.js"
import * as Settlement from "./settlement.js"

/** What every run of one provider shares. */
export interface Setup {
  readonly providerName: string
  readonly defaultTimeout: Duration.Duration
  readonly byName: ReadonlyMap<string, LocalTool<any>>
}

export const notOffered = (providerName: string, call: ToolCall): ToolError =>
  CallEvents.toolError(call, "NotFound", `Tool "${call.name}" is not offered by provider "${providerName}".`)

const timedOut = (call: ToolCall, timeout: Duration.Duration): ToolError =>
  CallEvents.toolError(call, "Timeout", `Tool "${call.name}" did not finish within ${Duration.format(timeout)} and was stopped.`)

/** One call of a run. */
interface Pending {
  readonly call: ToolCall
  readonly timeout: Duration.Duration
  /** Epoch millis past which the handler is stopped; `Infinity` without a limit. */
  readonly deadline: number
  fiber: Fiber.RuntimeFiber<void, ToolError> | undefined
  /** Ended: its terminal event (or the run's failure) is recorded; later events are dropped. */
  ended: boolean
}

/** The most calls started within one pull, so a long batch of instant calls still streams. */
const launchesPerPull = 128

export class LocalRun implements Reads {
  private readonly buffer = new EventBuffer<ToolEvent>(() => this.hasNews)
  private launched = 0
  private running = 0
  private readonly inflight = new Set<Pending>()
  private failure: Cause.Cause<ToolError> | undefined = undefined
  private stopped = false
  private runtime: Runtime.Runtime<any> | undefined = undefined
  private clock: Clock.Clock | undefined = undefined
  private timer: Fiber.RuntimeFiber<void> | undefined = undefined
  private timerAt = Infinity
  private span: Tracer.Span | undefined = undefined
  private spanTiming = true

  constructor(
    readonly setup: Setup,
    readonly calls: ReadonlyArray<ToolCall>,
    readonly context: ExecutionContext,
    readonly options: RunOptions
  ) {}

  /** Whether nothing more will be emitted after what is buffered. */
  private get ended(): boolean {
    return this.failure !== undefined || (this.launched === this.calls.length && this.running === 0)
  }

  get done(): boolean {
    return this.ended && this.failure === undefined && this.buffer.size === 0
  }

  /** Whether the reader has work besides taking events: the run ended, or a call can start. */
  private get hasNews(): boolean {
    return this.ended || this.stopped ||
      (this.launched < this.calls.length && this.running < this.options.concurrency)
  }

  /**
   * The events so far, waiting for some when there are none yet; `undefined` at the end, or
   * (without `settle`) the failure that ended the run.
   */
  readonly next: Effect.Effect<Chunk.Chunk<ToolEvent> | undefined, ToolError> = Effect.suspend(() => {
    if (this.runtime === undefined) return this.init
    this.pump()
    const chunk = this.buffer.take()
    if (chunk !== undefined) return Effect.succeed(chunk)
    if (this.failure !== undefined) return Effect.failCause(this.failure)
    if (this.ended || this.stopped) return Effect.succeed(undefined)
    return Effect.zipRight(this.buffer.waitForNews, this.next)
  })

  // The run's span is made only for a tracer that records it (see `internal/tracing.ts`).
  private readonly init: Effect.Effect<Chunk.Chunk<ToolEvent> | undefined, ToolError> = Effect.withFiberRuntime((fiber) => {
    const span = this.options.span
    const opened = span === undefined || !recording(fiber)
      ? Effect.void
      : Effect.flatMap(
        Effect.makeSpan(span.name, { captureStackTrace: false, attributes: span.attributes }),
        (made) =>
          Effect.map(FiberRef.get(FiberRef.currentTracerTimingEnabled), (timing) => {
            this.span = made
            this.spanTiming = timing
          })
      )
    return Effect.zipRight(opened, Effect.flatMap(Effect.runtime<never>(), (runtime) =>
      Effect.clockWith((clock) => {
        this.runtime = this.handlersRuntime(runtime)
        this.clock = clock
        return this.next
      })))
  })

  /** The handlers' requirements are the caller's to provide (or the toolbox's captured services). */
  private handlersRuntime(runtime: Runtime.Runtime<never>): Runtime.Runtime<any> {
    const services = this.options.services
    let context = runtime.context as Context.Context<any>
    if (services !== undefined && services.unsafeMap.size > 0) context = Context.merge(context, services)
    if (this.span !== undefined) context = Context.add(context, Tracer.ParentSpan, this.span)
    return context === runtime.context
      ? runtime as Runtime.Runtime<any>
      : Runtime.make({ context, fiberRefs: runtime.fiberRefs, runtimeFlags: runtime.runtimeFlags })
  }

  private emit(pending: Pending, event: ToolEvent): void {
    if (pending.ended || this.stopped) return
    this.buffer.push(event)
  }

  private pump(): void {
    const limit = Math.min(this.calls.length, this.launched + launchesPerPull)
    while (
      this.launched < limit && this.running < this.options.concurrency && this.failure === undefined && !this.stopped
    ) {
      this.launch(this.calls[this.launched++]!)
    }
  }

  private launch(call: ToolCall): void {
    this.running++
    const localTool = this.setup.byName.get(call.name)
    if (localTool === undefined) {
      return this.fail({ call, timeout: Duration.zero, deadline: 0, fiber: undefined, ended: false }, notOffered(this.setup.providerName, call))
    }
    const timeout = localTool.timeout ?? this.setup.defaultTimeout
    const pending: Pending = {
      call,
      timeout,
      deadline: Duration.isFinite(timeout) ? this.clock!.unsafeCurrentTimeMillis() + Duration.toMillis(timeout) : Infinity,
      fiber: undefined,
      ended: false
    }
    let body: Effect.Effect<void, ToolError, any>
    try {
      body = callBody(localTool, call, this.context, {
        emit: (event) => this.emit(pending, event),
        stamp: () => this.stamp()
      }, this.options.settle)
    } catch (defect) {
      // Only a bug can get here (the arguments could not even be read), but it must not break the run.
      return this.exited(pending, Exit.die(defect))
    }
    const fiber = Runtime.runFork(this.runtime!, body)
    fiber.addObserver((exit) => this.exited(pending, exit))
    if (!pending.ended) {
      pending.fiber = fiber
      this.inflight.add(pending)
      if (pending.deadline !== Infinity) this.arm(pending.deadline)
    }
  }

  private stamp(): string {
    return timestampOf(this.clock!.unsafeCurrentTimeMillis())
  }

  /** The handler's fiber ended (a call that timed out is ended by the timer instead). */
  private exited(pending: Pending, exit: Exit.Exit<void, ToolError>): void {
    if (pending.ended) return
    this.inflight.delete(pending)
    if (Exit.isSuccess(exit) || this.stopped) return this.closeCall(pending)
    const cause = exit.cause
    if (!this.options.settle) {
      this.failure = cause
      return this.closeCall(pending)
    }
    // With `settle`, a `ToolError` is already an event: what is left is an interruption or a defect.
    const { call } = pending
    if (Settlement.isCrash(cause)) Runtime.runFork(this.runtime!, Settlement.logCrash([call], this.context.contextId, cause))
    this.fail(pending, Settlement.settle(call, cause))
  }

  /** Ends a call with a failure: its `tool-error` event, or (without `settle`) the run's failure. */
  private fail(pending: Pending, error: ToolError): void {
    if (!this.options.settle) {
      this.failure ??= Cause.fail(error)
    } else if (!this.stopped) {
      this.buffer.push(CallEvents.errorEvent(CallEvents.callIds(this.context, pending.call), this.stamp(), error))
    }
    this.closeCall(pending)
  }

  private closeCall(pending: Pending): void {
    pending.ended = true
    this.running--
    // Nothing left to time: the timer need not wake.
    if (this.inflight.size === 0 && this.timer !== undefined) {
      this.timer.unsafeInterruptAsFork(FiberId.none)
      this.timer = undefined
      this.timerAt = Infinity
    }
    this.buffer.wake()
  }

  /** Makes sure the timer wakes by `deadline`. */
  private arm(deadline: number): void {
    if (this.timer !== undefined && this.timerAt <= deadline) return
    this.timer?.unsafeInterruptAsFork(FiberId.none)
    this.timerAt = deadline
    this.timer = Runtime.runFork(this.runtime!, Effect.interruptible(this.tick(deadline)))
  }

  private tick(at: number): Effect.Effect<void> {
    const wait = at - this.clock!.unsafeCurrentTimeMillis()
    return wait > 0 ? Effect.zipRight(this.clock!.sleep(Duration.millis(wait)), this.expire) : this.expire
  }

  /** Stops the calls whose time is up (interrupting each before its `Timeout`), then sleeps until the next. */
  private readonly expire: Effect.Effect<void> = Effect.suspend(() => {
    const now = this.clock!.unsafeCurrentTimeMillis()
    const due: Array<Pending> = []
    let next = Infinity
    for (const pending of this.inflight) {
      if (pending.deadline <= now) due.push(pending)
      else if (pending.deadline < next) next = pending.deadline
    }
    for (const pending of due) {
      this.inflight.delete(pending)
      pending.ended = true
    }
    this.timerAt = next
    if (next === Infinity) this.timer = undefined
    const rest = next === Infinity ? Effect.void : this.tick(next)
    if (due.length === 0) return rest
    return Effect.zipRight(
      Effect.uninterruptible(Effect.forEach(due, (pending) =>
        Effect.zipRight(
          Fiber.interrupt(pending.fiber!),
          Effect.sync(() => {
            pending.ended = false
            this.inflight.delete(pending)
            this.fail(pending, timedOut(pending.call, pending.timeout))
          })
        ), { discard: true })),
      rest
    )
  })

  /** Stops whatever still runs and ends the span: the reading ended (done, taken from, or interrupted). */
  close(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    this.stopped = true
    const timer = this.timer
    this.timer = undefined
    if (this.inflight.size === 0 && timer === undefined) {
      this.endSpan(exit)
      return Effect.void
    }
    const fibers: Array<Fiber.RuntimeFiber<unknown, unknown>> = []
    for (const pending of this.inflight) fibers.push(pending.fiber!)
    this.inflight.clear()
    if (timer !== undefined) fibers.push(timer)
    return Effect.ensuring(Fiber.interruptAll(fibers), Effect.sync(() => this.endSpan(exit)))
  }

  private endSpan(exit: Exit.Exit<unknown, unknown>): void {
    const span = this.span
    if (span === undefined) return
    this.span = undefined
    span.end(this.spanTiming ? this.clock!.unsafeCurrentTimeNanos() : BigInt(0), exit)
  }
}
