/**
 * One local tool call, as its fiber runs it: `tool-start` with the sensitive arguments redacted,
 * the handler (given the arguments revealed, reporting progress), then `tool-complete`; the
 * handler's failures mapped to the `ToolError` the model is shown, with any sensitive value
 * scrubbed out of messages and logs.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { ToolError } from "../../domain/Errors.js"
import type { ToolEvent } from "../../domain/Events.js"
import type { ExecutionContext } from "../../domain/ExecutionContext.js"
import type { ToolCall } from "../../domain/Message.js"
import * as Redaction from "../../domain/Redaction.js"
import { withSpan } from "../../internal/tracing.js"
import type { LocalTool, Progress } from "../LocalTools.js"
import * as CallEvents from "./callEvents.js"
import { InvalidArgumentsFailure } from "./localArguments.js"
import * as Settlement from "./settlement.js"

/** How a call's events leave it: `emit` hands one to the run, `stamp` is the run's clock as a timestamp. */
export interface CallOutput {
  readonly emit: (event: ToolEvent) => void
  readonly stamp: () => string
}

/**
 * What the call's fiber runs. With `settle`, the call's failure is its `tool-error` event instead
 * of the fiber's failure.
 */
export const callBody = (
  localTool: LocalTool<any>,
  call: ToolCall,
  context: ExecutionContext,
  output: CallOutput,
  settle: boolean
): Effect.Effect<void, ToolError, any> => {
  const { emit, stamp } = output
  const sensitive = localTool.sensitive
  // Sensitive values usually arrive wrapped in `Redacted` (the provider's parse protects them);
  // a call built by hand may carry them in the clear, and is protected here the same way.
  const protectedArguments = sensitive.length === 0 ? call.arguments : Redaction.protectArguments(call.arguments, sensitive)
  const secrets = sensitive.length === 0 ? noSecrets : Redaction.secretsOfArguments(protectedArguments)
  const shownArguments = sensitive.length === 0 ? call.arguments : Redaction.showArguments(protectedArguments)
  const scrub = secrets.length === 0 ? Settlement.noScrub : Redaction.scrubber(secrets)
  const ids = CallEvents.callIds(context, call)
  const progress = (report: Progress): Effect.Effect<void> =>
    Effect.sync(() =>
      emit(CallEvents.progressEvent(
        ids,
        stamp(),
        report.message !== undefined && secrets.length > 0 ? { ...report, message: scrub(report.message) } : report,
        true
      ))
    )
  const handled = call.argumentsError === undefined
    ? localTool.invoke(sensitive.length === 0 ? call.arguments : Redaction.revealArguments(protectedArguments), {
      context,
      call: sensitive.length === 0 ? call : { ...call, arguments: shownArguments },
      progress
    }).pipe(
      Effect.catchAllCause((cause) => handlerFailure(call, context, cause, scrub)),
      // Capturing a stack trace per span is costly on this hot path; the attributes identify the
      // call. Made only for a tracer that records it (see `internal/tracing.ts`).
      withSpan("LocalTools.call", {
        captureStackTrace: false,
        attributes: { "tool.name": call.name, "tool.call_id": call.id, "agent.context_id": context.contextId }
      })
    )
    : Effect.fail(
      CallEvents.toolError(
        call,
        "InvalidArguments",
        // The parser's message quotes the raw text, which may hold a sensitive value.
        sensitive.length > 0
          ? `Tool arguments for "${call.name}" are not valid JSON; send one JSON object matching the tool's parameters.`
          : call.argumentsError
      )
    )
  const run = Effect.suspend(() => {
    emit(CallEvents.startEvent(ids, stamp(), shownArguments))
    return Effect.flatMap(handled, (result) =>
      Effect.sync(() => emit(CallEvents.completeEvent(ids, stamp(), result === undefined ? null : result))))
  })
  return settle ? Effect.catchAll(run, (error) => Effect.sync(() => emit(CallEvents.errorEvent(ids, stamp(), error)))) : run
}

/**
 * The handler's failure as the `ToolError` the model is shown: arguments that did not decode
 * are `InvalidArguments` naming each issue, its own `ToolError` is kept, anything else is
 * `ExecutionFailed`; a defect is settled as a crash. An interruption stays one.
 */
const handlerFailure = (
  call: ToolCall,
  context: ExecutionContext,
  cause: Cause.Cause<unknown>,
  scrub: Settlement.Scrub
): Effect.Effect<never, ToolError> => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (error instanceof InvalidArgumentsFailure) {
      return Effect.fail(CallEvents.toolError(
        call,
        "InvalidArguments",
        scrub(error.message),
        scrub === Settlement.noScrub ? error.issues : error.issues.map((i) => ({ ...i, message: scrub(i.message) }))
      ))
    }
    if (error instanceof ToolError) {
      return Effect.fail(scrub === Settlement.noScrub ? error : new ToolError({ ...error, message: scrub(error.message) }))
    }
    return Effect.fail(
      CallEvents.toolError(call, "ExecutionFailed", scrub(`Tool "${call.name}" failed: ${Settlement.describe(error)}`))
    )
  }
  if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
  return Effect.zipRight(
    Settlement.logCrash([call], context.contextId, cause, scrub),
    Effect.fail(Settlement.crashed(call, Cause.squash(cause), scrub))
  )
}

const noSecrets: ReadonlyArray<string> = []
