/**
 * The registry behind `ClientToolResults`: client tool calls waiting for the host to `submit`
 * their result. A call is registered before its `tool-input-required` goes out, so a host can
 * answer at once; it leaves when answered, timed out or cancelled (its scope closed), and a late
 * `submit` hears which of these happened to it.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { ToolError, ToolErrorReason } from "../../domain/Errors.js"
import { timestampOf } from "../../domain/Events.js"
import type { ExecutionContext } from "../../domain/ExecutionContext.js"
import type { ToolCall } from "../../domain/Message.js"
import { showArguments } from "../../domain/Redaction.js"
import type { ClientToolResultsService, PendingClientCall } from "../ClientTools.js"
import type { ToolResult } from "../ToolProvider.js"
import { toolError } from "./callEvents.js"

/** The wire shape of a client's answer (`ClientTools.ToolResultSchema`). */
export const ToolResultSchema = Schema.Union(
  Schema.Struct({ success: Schema.Literal(true), result: Schema.Unknown }),
  Schema.Struct({
    success: Schema.Literal(false),
    error: Schema.String,
    reason: Schema.optionalWith(ToolErrorReason, { exact: true })
  })
)

export const decodeResult = Schema.decodeUnknownEither(ToolResultSchema)

export const timedOut = (call: ToolCall, timeout: Duration.Duration): ToolError =>
  toolError(call, "Timeout", `The client gave no result for tool "${call.name}" within ${Duration.format(timeout)}.`)

type Outcome = "answered" | "timed out" | "cancelled"

interface Waiting {
  readonly pending: PendingClientCall
  readonly deferred: Deferred.Deferred<ToolResult>
}

// How many finished calls are remembered, so a late `submit` hears why it was refused.
const rememberedOutcomes = 1024

class WaitingCalls implements ClientToolResultsService {
  private readonly waiting = new Map<string, Waiting>()
  private readonly finished = new Map<string, { readonly toolName: string; readonly outcome: Outcome }>()

  readonly pending: Effect.Effect<ReadonlyArray<PendingClientCall>> = Effect.sync(() =>
    Array.from(this.waiting.values(), (entry) => entry.pending)
  )

  readonly submit = (toolCallId: string, result: ToolResult): Effect.Effect<void, ToolError> =>
    Effect.suspend(() => {
      const entry = this.waiting.get(toolCallId)
      if (entry === undefined) return Effect.fail(this.refuse(toolCallId))
      const decoded = decodeResult(result)
      if (decoded._tag === "Left") {
        return Effect.fail(
          new ToolError({
            reason: "InvalidArguments",
            toolName: entry.pending.toolName,
            toolCallId,
            message: `A client tool result must be { success: true, result } or { success: false, error }: ${
              ParseResult.TreeFormatter.formatErrorSync(decoded.left)
            }`
          })
        )
      }
      this.finish(toolCallId, "answered")
      Deferred.unsafeDone(entry.deferred, Exit.succeed(decoded.right))
      return Effect.void
    }).pipe(Effect.withSpan("ClientToolResults.submit", { attributes: { "tool.call_id": toolCallId } }))

  readonly register = (
    call: ToolCall,
    context: ExecutionContext,
    timeout: Duration.Duration
  ): Effect.Effect<Effect.Effect<ToolResult, ToolError>, ToolError, Scope.Scope> =>
    Effect.map(
      Effect.acquireRelease(this.add(call, context), (entry) =>
        Effect.sync(() => this.finish(entry.pending.toolCallId, "cancelled"))),
      (entry) =>
        Effect.flatMap(Effect.timeoutOption(Deferred.await(entry.deferred), timeout), (result) => {
          if (Option.isSome(result)) return Effect.succeed(result.value)
          this.finish(call.id, "timed out")
          return Effect.fail(timedOut(call, timeout))
        })
    )

  private add(call: ToolCall, context: ExecutionContext): Effect.Effect<Waiting, ToolError> {
    return Effect.flatMap(Effect.zip(Deferred.make<ToolResult>(), Clock.currentTimeMillis), ([deferred, now]) =>
      Effect.suspend(() => {
        if (this.waiting.has(call.id)) {
          return Effect.fail(
            toolError(call, "ExecutionFailed", `A client tool call with id "${call.id}" is already waiting; ids must be unique.`)
          )
        }
        const entry: Waiting = {
          deferred,
          pending: {
            toolCallId: call.id,
            toolName: call.name,
            arguments: showArguments(call.arguments),
            contextId: context.contextId,
            taskId: context.taskId,
            agentId: context.agentId,
            since: timestampOf(now)
          }
        }
        this.waiting.set(call.id, entry)
        return Effect.succeed(entry)
      }))
  }

  private finish(toolCallId: string, outcome: Outcome): void {
    const entry = this.waiting.get(toolCallId)
    if (entry === undefined) return
    this.waiting.delete(toolCallId)
    this.finished.set(toolCallId, { toolName: entry.pending.toolName, outcome })
    if (this.finished.size > rememberedOutcomes) this.finished.delete(this.finished.keys().next().value!)
  }

  private refuse(toolCallId: string): ToolError {
    const known = this.finished.get(toolCallId)
    if (known !== undefined) {
      return new ToolError({
        reason: "InputRejected",
        toolName: known.toolName,
        toolCallId,
        message: `Client tool call "${toolCallId}" (${known.toolName}) was already ${known.outcome}; it takes no more results.`
      })
    }
    const ids = [...this.waiting.keys()]
    return new ToolError({
      reason: "InputRejected",
      toolName: "unknown",
      toolCallId,
      message: `No client tool call "${toolCallId}" is waiting for a result. ${
        ids.length === 0 ? "No call is waiting." : `Waiting: ${ids.slice(0, 10).join(", ")}${ids.length > 10 ? ", …" : ""}.`
      }`
    })
  }
}

/** An empty registry. */
export const make: Effect.Effect<ClientToolResultsService> = Effect.sync(() => new WaitingCalls())
