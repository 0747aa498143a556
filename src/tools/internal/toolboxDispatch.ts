/**
 * How a toolbox runs calls: each call goes to the provider that offers its tool, directly
 * through the provider's runner when it has one (one run of reads, settled and in the
 * toolbox's span inside the provider's own stage), otherwise through the provider's stream,
 * settled around it. A batch for one provider that batches through its runner is one run;
 * any other batch is merged from units with bounded concurrency.
 *
 * @internal
 */
import type * as Context from "effect/Context"
import * as Stream from "effect/Stream"
import type { ToolError } from "../../domain/Errors.js"
import type { ToolEvent } from "../../domain/Events.js"
import type { ExecutionContext } from "../../domain/ExecutionContext.js"
import type { ToolCall } from "../../domain/Message.js"
import type { Reads, Runner, ToolProvider } from "../ToolProvider.js"
import { readsToStream, runnerOf, toolErrorEvent } from "../ToolProvider.js"
import { settledStream } from "./settledStream.js"
import * as ToolIndex from "./toolIndex.js"

export const checkConcurrency = (concurrency: number): number => {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new Error(`Toolbox: concurrency must be a whole number of at least 1, got ${concurrency}.`)
  }
  return concurrency
}

export class Dispatch {
  constructor(
    /** The hot path reads the index synchronously; listing the tools again swaps in a new one. */
    public index: ToolIndex.Index,
    /** The toolbox's captured services, or `undefined` when there are none to add. */
    private readonly services: Context.Context<never> | undefined,
    private readonly defaultConcurrency: number
  ) {}

  /** The calls as one run of reads, when one provider with a runner takes them all at once. */
  readonly readsOf = (
    calls: ReadonlyArray<ToolCall>,
    context: ExecutionContext,
    concurrency: number | undefined
  ): Reads | undefined => {
    if (calls.length === 0) return undefined
    const owner = this.index.owner
    const provider = owner.get(calls[0]!.name)
    const runner = provider === undefined ? undefined : runnerOf(provider)
    if (runner === undefined) return undefined
    if (calls.length === 1) return this.readsWith(provider!, runner.run, calls, context, 1)
    if (runner.batches !== true || !calls.every((call) => owner.get(call.name) === provider)) return undefined
    return this.readsWith(provider!, runner.run, calls, context, checkConcurrency(concurrency ?? this.defaultConcurrency))
  }

  readonly execute = (call: ToolCall, context: ExecutionContext): Stream.Stream<ToolEvent> =>
    Stream.suspend(() => {
      const provider = this.index.owner.get(call.name)
      if (provider === undefined) {
        return Stream.fromEffect(toolErrorEvent(context, call, ToolIndex.notFound(call, this.index)))
      }
      const reads = this.readsOf([call], context, 1)
      return reads !== undefined
        ? readsToStream(() => reads) as Stream.Stream<ToolEvent>
        : this.settled(provider, [call], context, provider.execute(call, context))
    })

  readonly executeBatch = (
    calls: ReadonlyArray<ToolCall>,
    context: ExecutionContext,
    options?: { readonly concurrency?: number }
  ): Stream.Stream<ToolEvent> =>
    Stream.suspend(() => {
      const concurrency = options?.concurrency === undefined
        ? this.defaultConcurrency
        : checkConcurrency(options.concurrency)
      if (calls.length === 1) return this.execute(calls[0]!, context)
      // The common batch: every call for one provider that batches through its runner (local
      // tools), run as one stream with the batch's concurrency.
      const reads = this.readsOf(calls, context, concurrency)
      if (reads !== undefined) return readsToStream(() => reads) as Stream.Stream<ToolEvent>
      return Stream.mergeAll(ToolIndex.plan(calls, this.index).map((unit) =>
        unit.provider?.executeBatch === undefined || unit.calls.length === 1
          ? this.execute(unit.calls[0]!, context)
          : this.settled(unit.provider, unit.calls, context, unit.provider.executeBatch(unit.calls, context))
      ), { concurrency })
    })

  // A provider with a runner (local tools, MCP) settles its calls and opens the span itself:
  // one run of reads per call (or per batch) instead of its stream wrapped in the toolbox's.
  private readsWith(
    provider: ToolProvider<any>,
    runner: Runner,
    calls: ReadonlyArray<ToolCall>,
    context: ExecutionContext,
    concurrency: number
  ): Reads {
    return runner(calls, context, {
      settle: true,
      concurrency,
      services: this.services,
      span: { name: "Toolbox.execute", attributes: spanAttributes(provider, calls, context) }
    })
  }

  private settled(
    provider: ToolProvider<any>,
    calls: ReadonlyArray<ToolCall>,
    context: ExecutionContext,
    stream: Stream.Stream<ToolEvent, ToolError, any>
  ): Stream.Stream<ToolEvent> {
    // The provider's requirements are among the toolbox's captured services, which the settled stream adds.
    const provided = stream as Stream.Stream<ToolEvent, ToolError>
    return settledStream(calls, context, provided, this.services, spanAttributes(provider, calls, context))
  }
}

const spanAttributes = (provider: ToolProvider<any>, calls: ReadonlyArray<ToolCall>, context: ExecutionContext) => ({
  "tool.provider": provider.name,
  "tool.name": calls.length === 1 ? calls[0]!.name : calls.map((call) => call.name),
  "tool.call_id": calls.length === 1 ? calls[0]!.id : calls.map((call) => call.id),
  "agent.context_id": context.contextId
})
