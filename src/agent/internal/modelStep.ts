/**
 * One model call of a run, read into events as it streams: text and reasoning deltas, the route
 * decision, the tool calls assembled (their sensitive arguments protected) and usage. A stall
 * before any text or reasoning is escalated once to the next tier up, when the router chose the
 * tier itself.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import { AgentError, type ProviderError, type RoutingError } from "../../domain/Errors.js"
import { ContentDeltaEvent, ReasoningDeltaEvent, RouteSelectedEvent, type AgentEvent } from "../../domain/Events.js"
import type { ExecutionContext } from "../../domain/ExecutionContext.js"
import {
  addUsage,
  type ChatChunk,
  type FinishReason,
  type QueryTier,
  type ToolCall,
  type ToolDefinition,
  type Usage,
  protectToolCall
} from "../../domain/Message.js"
import type * as LanguageModel from "../../providers/LanguageModel.js"
import * as Resilience from "../../providers/Resilience.js"
import { base, type Deps, now, type Settings, type State } from "./run.js"

export const modelFailure = (context: ExecutionContext, error: ProviderError | RoutingError): AgentError =>
  new AgentError({
    reason: error._tag === "RoutingError" ? "NoProvider" : "ModelFailed",
    contextId: context.contextId,
    taskId: context.taskId,
    message: error._tag === "RoutingError"
      ? `No model provider could serve the request: ${error.message}`
      : `The model call failed (${error.providerId}: ${error.reason}): ${error.message}`,
    cause: error
  })

export interface StepResult {
  readonly text: string
  readonly toolCalls: ReadonlyArray<ToolCall>
  readonly usage: Usage
  readonly finishReason: FinishReason
  readonly tier: QueryTier | undefined
  readonly provider: string | undefined
  readonly model: string | undefined
}

const nextTier: Record<QueryTier, QueryTier | undefined> = {
  simple: "moderate",
  moderate: "complex",
  complex: "reasoning",
  reasoning: undefined
}

/**
 * One model call, streamed into events. A stall (timeout) before any text or reasoning reached
 * the caller is escalated once to the next tier up, when the router chose the tier itself: once
 * the caller has seen one model think, another's answer would not follow from it.
 */
export const callModel = (
  state: State,
  settings: Settings,
  deps: Deps,
  tools: ReadonlyArray<ToolDefinition>,
  forcedTier: QueryTier | undefined
): Effect.Effect<StepResult, ProviderError | RoutingError> =>
  Effect.suspend(() => {
    let text = ""
    const toolCalls: Array<ToolCall> = []
    let usage: Usage = {}
    let finishReason: FinishReason = "other"
    let tier: QueryTier | undefined
    let provider: string | undefined
    let model: string | undefined
    let forced = false
    let reasoned = false
    // Only a provider of the user's own could leave sensitive values unprotected; the kernel's
    // protect them as they parse.
    const guarded = tools.some((definition) => definition.sensitive !== undefined && definition.sensitive.length > 0)
    const options: LanguageModel.ChatOptions = {
      ...settings.chatOptions,
      ...(tools.length > 0 && settings.toolChoice !== undefined ? { toolChoice: settings.toolChoice } : {}),
      ...(forcedTier !== undefined ? { tier: forcedTier } : {})
    }
    // Chunks are handled a batch at a time: one clock read and one offer per batch, not per chunk.
    const handle = (chunks: Chunk.Chunk<ChatChunk>, timestamp: string) => {
      const events: Array<AgentEvent> = []
      for (const chunk of chunks) {
        switch (chunk._tag) {
          case "text-delta":
            text += chunk.delta
            events.push(new ContentDeltaEvent({ ...base(state.context, timestamp), delta: chunk.delta }, true))
            break
          case "reasoning-delta":
            reasoned = true
            events.push(new ReasoningDeltaEvent({ ...base(state.context, timestamp), delta: chunk.delta }, true))
            break
          case "route":
            tier = chunk.tier
            provider = chunk.provider
            forced = chunk.forced
            events.push(
              new RouteSelectedEvent({
                ...base(state.context, timestamp),
                tier: chunk.tier,
                provider: chunk.provider,
                score: chunk.score,
                signals: chunk.signals,
                forced: chunk.forced,
                fallbacksTried: chunk.fallbacksTried
              }, true)
            )
            break
          case "tool-call-end":
            toolCalls.push(guarded ? protectToolCall(chunk.toolCall, tools) : chunk.toolCall)
            break
          case "usage":
            usage = addUsage(usage, chunk.usage)
            break
          case "finish":
            finishReason = chunk.finishReason
            model = chunk.model
            break
          default:
            break
        }
      }
      return events.length === 0 ? Effect.void : deps.emitAll(events)
    }
    // Without a stream when the provider offers it (the kernel's own providers do); measurably
    // cheaper per step, and the same chunks.
    return Resilience.runForEachChunk(
      deps.model,
      state.messages,
      tools,
      options,
      (chunks) => Effect.flatMap(now, (timestamp) => handle(chunks, timestamp))
    ).pipe(
      Effect.map((): StepResult => ({ text, toolCalls, usage, finishReason, tier, provider, model })),
      Effect.catchAll((error) => {
        const escalateTo = tier !== undefined && !forced ? nextTier[tier] : undefined
        const silentStall = error._tag === "ProviderError" && error.reason === "Timeout" && text === "" && !reasoned
        return silentStall && escalateTo !== undefined
          ? Effect.zipRight(
            Effect.logWarning(`Model stalled on tier ${tier}; escalating to ${escalateTo}`),
            callModel(state, settings, deps, tools, escalateTo)
          )
          : Effect.fail(error)
      })
    )
  })

