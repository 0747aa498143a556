/**
 * The SDK's `AgentExecutor` for a served agent: each message runs `run` in a fiber of the
 * server's scope and publishes its events on the task's bus. Three things end a run early:
 * `tasks/cancel`, a follow-up message to a task whose earlier run is still parked, and the
 * client that is waiting for the run going away (`ClientConnection`).
 */
import type { AgentExecutor, ExecutionEventBus, RequestContext } from "@a2a-js/sdk/server"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import type { Run, RunInput } from "../AgentServer.js"
import { cancelledEvent, Publisher, State, textOf } from "./serverPublisher.js"

/** Where the caller's token travels in the SDK's request state, when it is forwarded. */
export const tokenKey = "effect-agent-kernel/callerToken"

/** Where a request's `ClientConnection` travels in the SDK's request state. */
export const connectionKey = "effect-agent-kernel/clientConnection"

/**
 * The client of one HTTP request that waits for the runs it starts (a stream, or a blocking
 * send). When it goes, the executor cancels those runs: nobody is left to read their answer.
 * A request that does not wait (a non-blocking send) carries none, so its run goes on.
 */
export class ClientConnection {
  gone = false
}

export type RunFork<R> = (effect: Effect.Effect<void, never, R>) => Fiber.RuntimeFiber<void, never>

interface Running {
  readonly fiber: Fiber.RuntimeFiber<void, never>
  readonly publisher: Publisher
  readonly connection: ClientConnection | undefined
}

export interface ExecutorOptions<R> {
  readonly run: Run<R>
  readonly runFork: RunFork<R>
  readonly forwardCredentials: boolean
  /** Whether the task store can take one more task (see `BoundedTaskStore.hasRoom`). */
  readonly hasRoom: () => boolean
  readonly maxTasks: number
}

export class RunExecutor<R> implements AgentExecutor {
  private readonly running = new Map<string, Running>()
  /** Tasks whose run ended waiting for input, with their contextId, until answered or cancelled. */
  private readonly parked = new Map<string, string>()

  constructor(readonly options: ExecutorOptions<R>) {}

  execute = async (request: RequestContext, bus: ExecutionEventBus): Promise<void> => {
    const previous = this.running.get(request.taskId)
    // A follow-up message to a task whose earlier run is still parked (waiting for input).
    if (previous !== undefined) await Effect.runPromise(Fiber.interrupt(previous.fiber))
    this.parked.delete(request.taskId)
    const publisher = new Publisher(request, bus)
    const connection = request.context.state.get(connectionKey)
    const refusal = this.refusal(request, connection)
    if (refusal !== undefined) return refusal(publisher)
    const fiber = this.options.runFork(this.consume(request, publisher))
    this.running.set(request.taskId, {
      fiber,
      publisher,
      connection: connection instanceof ClientConnection ? connection : undefined
    })
    await Effect.runPromise(Fiber.await(fiber))
    if (this.running.get(request.taskId)?.fiber === fiber) {
      this.running.delete(request.taskId)
      if (publisher.waitingForInput) this.parked.set(request.taskId, request.contextId)
    }
  }

  cancelTask = async (taskId: string, bus: ExecutionEventBus): Promise<void> => {
    const entry = this.running.get(taskId)
    if (entry === undefined) {
      const contextId = this.parked.get(taskId)
      this.parked.delete(taskId)
      return bus.publish(cancelledEvent(taskId, contextId ?? ""))
    }
    // The canceled status is published from inside the fiber, before `execute` returns and the
    // handler closes the bus.
    entry.publisher.cancelRequested = true
    await Effect.runPromise(Fiber.interrupt(entry.fiber))
  }

  /**
   * The client of `connection` went away: its runs still going are interrupted (and with them
   * their model requests and tools) and end `canceled`; runs it has not started yet never start.
   */
  abandon(connection: ClientConnection): Effect.Effect<void> {
    return Effect.suspend(() => {
      connection.gone = true
      const fibers = [...this.running.values()].filter((entry) => entry.connection === connection)
      return Effect.forEach(fibers, (entry) => Fiber.interrupt(entry.fiber), { discard: true })
    })
  }

  /** Why this message gets no run, as what to publish instead; `undefined` when it does. */
  private refusal(request: RequestContext, connection: unknown): ((publisher: Publisher) => void) | undefined {
    if (connection instanceof ClientConnection && connection.gone) {
      return (publisher) => {
        publisher.start()
        publisher.cancelled()
      }
    }
    if (request.task === undefined && !this.options.hasRoom()) {
      return (publisher) => {
        publisher.start()
        publisher.status(
          State.rejected,
          `This agent keeps at most ${this.options.maxTasks} tasks and all of them are still in progress or ` +
            "waiting for input. Try again when one has finished, or cancel one you no longer need."
        )
      }
    }
    return undefined
  }

  private consume(request: RequestContext, publisher: Publisher): Effect.Effect<void, never, R> {
    const prompt = textOf(request.userMessage)
    const token = request.context.state.get(tokenKey)
    const input: RunInput = {
      prompt,
      contextId: request.contextId,
      taskId: request.taskId,
      ...(this.options.forwardCredentials && Redacted.isRedacted(token)
        ? { authContext: { credentials: { accessToken: token as Redacted.Redacted<string> } } }
        : {})
    }
    const program = prompt.trim() === ""
      ? Effect.sync(() => publisher.status(State.rejected, "The message has no text. Send the prompt as a text part."))
      : this.options.run(input).pipe(
        Stream.runForEach((event) => Effect.sync(() => publisher.event(event))),
        Effect.matchCauseEffect({
          onSuccess: () => Effect.sync(() => publisher.finish()),
          onFailure: (cause) =>
            Option.match(Cause.failureOption(cause), {
              onSome: (error) => Effect.sync(() => publisher.status(State.failed, error.message)),
              onNone: () =>
                Effect.logError("AgentServer: the run died", cause).pipe(
                  Effect.zipRight(Effect.sync(() => publisher.status(State.failed, "The agent failed unexpectedly.")))
                )
            })
        })
      )
    return Effect.sync(() => publisher.start()).pipe(
      Effect.zipRight(program),
      Effect.onInterrupt(() => Effect.sync(() => publisher.cancelled())),
      Effect.withSpan("AgentServer.task", { attributes: { "a2a.task_id": request.taskId, "a2a.context_id": request.contextId } })
    )
  }
}
