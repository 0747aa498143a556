/**
 * Tools implemented in the agent's own process (seed 001's `tool()` and `localTools`). A tool
 * is data (name, description, an Effect Schema for its parameters) plus a handler returning an
 * `Effect`; the handler's requirements show in the provider's type and are provided by a Layer,
 * so tests can run the same tool against other services.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as JSONSchema from "effect/JSONSchema"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import * as Runtime from "effect/Runtime"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import { ToolError } from "../domain/Errors.js"
import {
  timestampOf,
  ToolCompleteEvent,
  ToolErrorEvent,
  type ToolEvent,
  ToolProgressEvent,
  ToolStartEvent
} from "../domain/Events.js"
import type { ExecutionContext } from "../domain/ExecutionContext.js"
import type { ToolCall, ToolDefinition } from "../domain/Message.js"
import * as Redaction from "../domain/Redaction.js"
import { recording, withSpan } from "../internal/tracing.js"
import type { Reads, RunOptions, Runner, ToolProvider } from "./ToolProvider.js"
import { readsToStream, toolError } from "./ToolProvider.js"

/** What a handler may report while it works; each report becomes a `tool-progress` event. @since 0.1.0 */
export interface Progress {
  readonly progress?: number
  readonly total?: number
  readonly message?: string
}

/**
 * The second argument of a handler: the execution context, the call as the model made it, and
 * `progress`, which emits a `tool-progress` event (delivered before the call's `tool-complete`).
 *
 * @since 0.1.0
 */
export interface ToolContext {
  readonly context: ExecutionContext
  readonly call: ToolCall
  readonly progress: (progress: Progress) => Effect.Effect<void>
}

/**
 * A local tool, made by `tool`. `R` is what its handler needs from the environment. `invoke`
 * decodes the arguments and runs the handler; it is what `localTools` calls and is not meant
 * to be called directly.
 *
 * @since 0.1.0
 */
export interface LocalTool<out R = never> {
  readonly name: string
  readonly description: string
  readonly definition: ToolDefinition
  /** Argument names whose values never appear in events or errors. */
  readonly sensitive: ReadonlyArray<string>
  /** The tool's own time limit; `undefined` means the provider's default. */
  readonly timeout: Duration.Duration | undefined
  readonly invoke: (args: Record<string, unknown>, context: ToolContext) => Effect.Effect<unknown, unknown, R>
}

/** The requirements of a union of local tools. @since 0.1.0 */
export type Requirements<T> = T extends LocalTool<infer R> ? R : never

/** Replaces sensitive argument values in events and error messages. @since 0.1.0 */
export const REDACTED = Redaction.REDACTED

const validName = /^[a-zA-Z0-9_-]{1,64}$/

/**
 * Defines a local tool. `parameters` must be an object schema (a `Schema.Struct` or a
 * `Schema.Class`); its JSON Schema, made once with `JSONSchema.make` rules and without the
 * `$schema` key that some providers reject, is what the model sees. Arguments are decoded with
 * all errors reported and excess properties refused, matching the `additionalProperties: false`
 * the model is shown. The handler's value is the result as it is (it should be JSON data; the
 * seed's `{ success, result }` envelope is not unwrapped, since real data may have those
 * fields): fail the Effect to report a failure. An invalid name or a non-object schema is a
 * programming error and throws at once.
 *
 * @example
 * ```ts
 * const greet = tool({
 *   name: "greet",
 *   description: "Greets someone by name.",
 *   parameters: Schema.Struct({ name: Schema.String }),
 *   handler: ({ name }, { progress }) =>
 *     progress({ message: "thinking" }).pipe(Effect.as({ greeting: `Hello, ${name}!` }))
 * })
 * ```
 * @since 0.1.0
 */
export const tool = <A, I, E, R>(options: {
  readonly name: string
  readonly description: string
  readonly parameters: Schema.Schema<A, I, never>
  readonly handler: (args: A, context: ToolContext) => Effect.Effect<unknown, E, R>
  readonly timeout?: Duration.DurationInput
  readonly sensitive?: ReadonlyArray<Extract<keyof A, string>>
}): LocalTool<R> => {
  const { description, handler, name, parameters } = options
  if (!validName.test(name)) {
    throw new Error(
      `tool(): invalid tool name ${JSON.stringify(name)}; use 1 to 64 letters, digits, "_" or "-" (what model APIs accept).`
    )
  }
  const decode = Schema.decodeUnknown(parameters, { errors: "all", onExcessProperty: "error" })
  return {
    name,
    description,
    definition: {
      name,
      description,
      parameters: parametersJsonSchema(name, parameters),
      ...(options.sensitive !== undefined && options.sensitive.length > 0 ? { sensitive: options.sensitive } : {})
    },
    sensitive: options.sensitive ?? [],
    timeout: options.timeout !== undefined ? Duration.decode(options.timeout) : undefined,
    invoke: (args, context) =>
      Effect.flatMap(
        Effect.mapError(decode(args), (error) => invalidArguments(context.call, error)),
        (decoded) => handler(decoded, context)
      )
  }
}

const parametersJsonSchema = (name: string, schema: Schema.Schema.Any): Record<string, unknown> => {
  const encoded = SchemaAST.encodedAST(schema.ast)
  // `JSONSchema` renders an empty struct as "object or array"; a tool without parameters wants an empty object.
  if (SchemaAST.isTypeLiteral(encoded) && encoded.propertySignatures.length === 0 && encoded.indexSignatures.length === 0) {
    return { type: "object", properties: {}, required: [], additionalProperties: false }
  }
  const definitions: Record<string, JSONSchema.JsonSchema7> = {}
  // "skip" inlines a top-level `$ref` (a Schema.Class), because model APIs want `type: "object"` at the root.
  const root = JSONSchema.fromAST(schema.ast, { definitions, topLevelReferenceStrategy: "skip" })
  if (!("type" in root) || root.type !== "object") {
    throw new Error(
      `tool(): the parameters of tool "${name}" must be an object schema (Schema.Struct or Schema.Class), got ${
        JSON.stringify(root).slice(0, 120)
      }.`
    )
  }
  return Object.keys(definitions).length === 0 ? { ...root } : { ...root, $defs: definitions }
}

/** Issues found while decoding: a marker the error mapping recognises. */
class InvalidArgumentsFailure {
  constructor(readonly message: string, readonly issues: ReadonlyArray<{ path: string; message: string }>) {}
}

const invalidArguments = (call: ToolCall, error: ParseResult.ParseError): InvalidArgumentsFailure => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => ({
    path: formatPath(issue.path),
    message: issue.message
  }))
  const listed = issues.map((issue) => `${issue.path}: ${issue.message}`).join("; ")
  return new InvalidArgumentsFailure(
    `Invalid arguments for tool "${call.name}": ${listed}. Correct the arguments to match the tool's parameters and call it again.`,
    issues
  )
}

const formatPath = (path: ReadonlyArray<PropertyKey>): string => {
  if (path.length === 0) return "(arguments)"
  let out = ""
  for (const key of path) out += typeof key === "number" ? `[${key}]` : out === "" ? String(key) : `.${String(key)}`
  return out
}

/**
 * A provider of local tools (seed 001's `localTools`). `R` is the union of the handlers'
 * requirements. Each call emits `tool-start` (sensitive arguments redacted), the handler's
 * `tool-progress` events in order, then `tool-complete`; otherwise the stream fails with a
 * `ToolError`:
 * - `InvalidArguments` when the model sent invalid JSON (`argumentsError`) or arguments that do
 *   not match the schema; the message names each field and what was wrong;
 * - `Timeout` when the handler runs past its time limit (the tool's `timeout`, else the
 *   provider's, default 60 seconds; `Duration.infinity` disables it); the handler is interrupted;
 * - the handler's own `ToolError`, kept as is; any other failure becomes `ExecutionFailed`;
 * - a defect (a thrown exception) is a bug, but one buggy tool must not bring the agent down:
 *   it is logged at error level with its cause and reported as `ExecutionFailed`
 *   (`Tool "x" crashed: ...`).
 * `executeBatch` runs many calls, up to 8 at once, through one stream; there a failure is the
 * call's terminal `tool-error` event, so one failing call does not end the others.
 * Duplicate tool names are a programming error and throw when the provider is built.
 *
 * @example
 * ```ts
 * const provider = localTools([greet, search]) // ToolProvider<SearchIndex>
 * const toolbox = Toolbox.layer([provider]).pipe(Layer.provide(SearchIndex.layer))
 * ```
 * @since 0.1.0
 */
export const localTools = <const Tools extends ReadonlyArray<LocalTool<any>>>(
  tools: Tools,
  options?: { readonly name?: string; readonly timeout?: Duration.DurationInput }
): ToolProvider<Requirements<Tools[number]>> => {
  type R = Requirements<Tools[number]>
  const providerName = options?.name ?? "local"
  const defaultTimeout = Duration.decode(options?.timeout ?? "60 seconds")
  const byName = new Map<string, LocalTool<R>>()
  for (const localTool of tools) {
    if (byName.has(localTool.name)) {
      throw new Error(
        `localTools("${providerName}"): two tools are named "${localTool.name}"; tool names must be unique within a provider.`
      )
    }
    byName.set(localTool.name, localTool)
  }
  const definitions: ReadonlyArray<ToolDefinition> = tools.map((localTool) => localTool.definition)
  const allTools = Effect.succeed(definitions)
  const setup: Setup = { providerName, defaultTimeout, byName }

  const runner: Runner = (calls, context, runOptions) => new Run(setup, calls, context, runOptions)
  const stream = (calls: ReadonlyArray<ToolCall>, context: ExecutionContext, runOptions: RunOptions) =>
    readsToStream(() => runner(calls, context, runOptions)) as Stream.Stream<ToolEvent, ToolError, R>

  const execute = (call: ToolCall, context: ExecutionContext): Stream.Stream<ToolEvent, ToolError, R> =>
    byName.has(call.name)
      ? stream([call], context, providerContract)
      : Stream.fail(notOffered(providerName, call))

  return {
    name: providerName,
    getTools: allTools,
    getTool: (name) => Effect.succeed(Option.fromNullable(byName.get(name)?.definition)),
    execute,
    executeBatch: (calls, context) => stream(calls, context, batchDefaults),
    runner: { run: runner, batches: true, execute }
  } satisfies ToolProvider<R>
}

const providerContract: RunOptions = { settle: false, concurrency: 1 }
const batchDefaults: RunOptions = { settle: true, concurrency: 8 }

interface Setup {
  readonly providerName: string
  readonly defaultTimeout: Duration.Duration
  readonly byName: ReadonlyMap<string, LocalTool<any>>
}

const notOffered = (providerName: string, call: ToolCall): ToolError =>
  toolError(call, "NotFound", `Tool "${call.name}" is not offered by provider "${providerName}".`)

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

/**
 * A run of calls behind one stream. Each handler runs in its own fiber, started at once (an
 * instant handler finishes before `launch` returns, so its events go out in the same chunk);
 * its events collect in `buffer`, which the stream drains on each pull, waiting only when it is
 * empty. One timer fiber, armed only for handlers still running after their first step, stops
 * the calls whose time is up.
 */
class Run implements Reads {
  private buffer: Array<ToolEvent> = []
  private launched = 0
  private running = 0
  private readonly inflight = new Set<Pending>()
  private failure: Cause.Cause<ToolError> | undefined = undefined
  private stopped = false
  private wake: ((effect: Effect.Effect<void>) => void) | undefined = undefined
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
  get ended(): boolean {
    return this.failure !== undefined || (this.launched === this.calls.length && this.running === 0)
  }

  get done(): boolean {
    return this.ended && this.failure === undefined && this.buffer.length === 0
  }

  /**
   * The events so far, waiting for some when there are none yet; `undefined` at the end, or
   * (without `settle`) the failure that ended the run.
   */
  readonly next: Effect.Effect<Chunk.Chunk<ToolEvent> | undefined, ToolError> = Effect.suspend(() => {
    if (this.runtime === undefined) return this.init
    this.pump()
    if (this.buffer.length > 0) {
      const chunk = Chunk.unsafeFromArray(this.buffer)
      this.buffer = []
      return Effect.succeed(chunk)
    }
    if (this.failure !== undefined) return Effect.failCause(this.failure)
    if (this.ended || this.stopped) return Effect.succeed(undefined)
    return Effect.zipRight(this.waitForEvents, this.next)
  })

  // Checked again as the wait begins: the fiber may have yielded since `next` looked, and a
  // signal given meanwhile found nobody to wake.
  private readonly waitForEvents: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (!this.quiet) return resume(Effect.void)
    this.wake = resume
    return Effect.sync(() => {
      this.wake = undefined
    })
  })

  /** Whether `next` has to wait: nothing to hand out, nothing ended, no call that could start. */
  private get quiet(): boolean {
    return this.buffer.length === 0 && !this.ended && !this.stopped &&
      !(this.launched < this.calls.length && this.running < this.options.concurrency && this.failure === undefined)
  }

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
    return Effect.zipRight(
      opened,
      Effect.flatMap(Effect.runtime<never>(), (runtime) =>
        Effect.clockWith((clock) => {
          const services = this.options.services
          let context = runtime.context
          if (services !== undefined && services.unsafeMap.size > 0) context = Context.merge(context, services)
          if (this.span !== undefined) context = Context.add(context, Tracer.ParentSpan, this.span)
          // The handlers' requirements are the caller's to provide (or the toolbox's captured services).
          this.runtime = (context === runtime.context ? runtime : Runtime.make({
            context,
            fiberRefs: runtime.fiberRefs,
            runtimeFlags: runtime.runtimeFlags
          })) as Runtime.Runtime<any>
          this.clock = clock
          return this.next
        }))
    )
  })

  private signal(): void {
    const wake = this.wake
    if (wake !== undefined) {
      this.wake = undefined
      wake(Effect.void)
    }
  }

  private emit(pending: Pending, event: ToolEvent): void {
    if (pending.ended || this.stopped) return
    this.buffer.push(event)
    this.signal()
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
      body = this.body(pending, localTool)
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

  /** What the handler's fiber runs: `tool-start`, the handler, then `tool-complete`. */
  private body(pending: Pending, localTool: LocalTool<any>): Effect.Effect<void, ToolError, any> {
    const call = pending.call
    const context = this.context
    const sensitive = localTool.sensitive
    // Sensitive values usually arrive wrapped in `Redacted` (the provider's parse protects them);
    // a call built by hand may carry them in the clear, and is protected here the same way.
    const protectedArguments = sensitive.length === 0 ? call.arguments : Redaction.protectArguments(call.arguments, sensitive)
    const secrets = sensitive.length === 0 ? noSecrets : Redaction.secretsOfArguments(protectedArguments)
    const shownArguments = sensitive.length === 0 ? call.arguments : Redaction.showArguments(protectedArguments)
    const scrub = secrets.length === 0 ? identity : Redaction.scrubber(secrets)
    // Events are stamped with the run's Clock (the handlers' own) as they are made.
    const ids = { contextId: context.contextId, taskId: context.taskId, toolCallId: call.id, toolName: call.name }
    const progress = (report: Progress): Effect.Effect<void> =>
      Effect.sync(() =>
        this.emit(
          pending,
          new ToolProgressEvent({
            ...ids,
            timestamp: this.stamp(),
            ...(report.message !== undefined && secrets.length > 0 ? { ...report, message: scrub(report.message) } : report)
          })
        )
      )
    const handled = call.argumentsError === undefined
      ? localTool.invoke(sensitive.length === 0 ? call.arguments : Redaction.revealArguments(protectedArguments), {
        context,
        call: sensitive.length === 0 ? call : { ...call, arguments: shownArguments },
        progress
      }).pipe(
        Effect.catchAllCause((cause) => toToolError(localTool.name, call, cause, scrub)),
        // Capturing a stack trace per span is costly on this hot path; the attributes identify the
        // call. Made only for a tracer that records it (see `internal/tracing.ts`).
        withSpan("LocalTools.call", {
          captureStackTrace: false,
          attributes: { "tool.name": call.name, "tool.call_id": call.id, "agent.context_id": context.contextId }
        })
      )
      : Effect.fail(
        toolError(
          call,
          "InvalidArguments",
          // The parser's message quotes the raw text, which may hold a sensitive value.
          sensitive.length > 0
            ? `Tool arguments for "${call.name}" are not valid JSON; send one JSON object matching the tool's parameters.`
            : call.argumentsError
        )
      )
    const run = Effect.suspend(() => {
      // Built from values already checked: the constructor's validation would only cost time.
      this.emit(pending, new ToolStartEvent({ ...ids, timestamp: this.stamp(), arguments: shownArguments }, true))
      return Effect.flatMap(handled, (result) =>
        Effect.sync(() =>
          this.emit(
            pending,
            new ToolCompleteEvent({ ...ids, timestamp: this.stamp(), result: result === undefined ? null : result }, true)
          )
        ))
    })
    return this.options.settle
      ? Effect.catchAll(run, (error) => Effect.sync(() => this.emit(pending, errorEvent(context, call, error, this.now()))))
      : run
  }

  private now(): number {
    return this.clock!.unsafeCurrentTimeMillis()
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
    if (Cause.isInterruptedOnly(cause)) {
      return this.fail(pending, toolError(call, "ExecutionFailed", `Tool "${call.name}" was interrupted before it finished.`))
    }
    Runtime.runFork(
      this.runtime!,
      Effect.logError("A tool provider crashed", Cause.pretty(cause)).pipe(
        Effect.annotateLogs({ toolNames: call.name, contextId: this.context.contextId })
      )
    )
    this.fail(
      pending,
      toolError(call, "ExecutionFailed", `Tool "${call.name}" crashed: ${describeDefect(Cause.squash(cause))}`)
    )
  }

  /** Ends a call with a failure: its `tool-error` event, or (without `settle`) the stream's failure. */
  private fail(pending: Pending, error: ToolError): void {
    if (!this.options.settle) {
      this.failure ??= Cause.fail(error)
    } else if (!this.stopped) {
      this.buffer.push(errorEvent(this.context, pending.call, error, this.now()))
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
    this.signal()
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

  /** Stops whatever still runs and ends the span: the stream was closed (done, taken from, or interrupted). */
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

const errorEvent = (context: ExecutionContext, call: ToolCall, error: ToolError, millis: number): ToolErrorEvent =>
  new ToolErrorEvent({
    contextId: context.contextId,
    taskId: context.taskId,
    toolCallId: call.id,
    toolName: call.name,
    timestamp: timestampOf(millis),
    reason: error.reason,
    error: error.message
  }, true)

const describeDefect = (defect: unknown): string =>
  defect instanceof Error ? defect.message : typeof defect === "string" ? defect : String(defect)

const toToolError = (
  toolName: string,
  call: ToolCall,
  cause: Cause.Cause<unknown>,
  scrub: (text: string) => string
): Effect.Effect<never, ToolError> => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (error instanceof InvalidArgumentsFailure) {
      return Effect.fail(toolError(
        call,
        "InvalidArguments",
        scrub(error.message),
        scrub === identity ? error.issues : error.issues.map((i) => ({ ...i, message: scrub(i.message) }))
      ))
    }
    if (error instanceof ToolError) {
      return Effect.fail(scrub === identity ? error : new ToolError({ ...error, message: scrub(error.message) }))
    }
    return Effect.fail(toolError(call, "ExecutionFailed", scrub(`Tool "${toolName}" failed: ${describe(error)}`)))
  }
  if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
  const defect = Option.getOrUndefined(Cause.dieOption(cause))
  return Effect.zipRight(
    Effect.logError(`Tool "${toolName}" crashed`, scrub(Cause.pretty(cause))).pipe(
      Effect.annotateLogs({ toolName, toolCallId: call.id })
    ),
    Effect.fail(toolError(call, "ExecutionFailed", scrub(`Tool "${toolName}" crashed: ${describe(defect)}`)))
  )
}

/** A short, readable account of an unknown failure value. */
const describe = (error: unknown): string => {
  if (typeof error === "string") return error
  if (typeof error === "object" && error !== null) {
    const tag = "_tag" in error && typeof error._tag === "string" ? error._tag : undefined
    const message = "message" in error && typeof error.message === "string" && error.message !== ""
      ? error.message
      : undefined
    if (message !== undefined) return tag !== undefined && !message.startsWith(tag) ? `${tag}: ${message}` : message
    if (tag !== undefined) return tag
  }
  try {
    return JSON.stringify(error)?.slice(0, 500) ?? String(error)
  } catch {
    return String(error)
  }
}

const timedOut = (call: ToolCall, timeout: Duration.Duration): ToolError =>
  toolError(call, "Timeout", `Tool "${call.name}" did not finish within ${Duration.format(timeout)} and was stopped.`)

const noSecrets: ReadonlyArray<string> = []

const identity = (text: string): string => text
