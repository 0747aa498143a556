/**
 * One call's remote A2A task, read as tool events: status updates become `tool-progress`, the
 * final artifacts or message `tool-complete`, a question `tool-input-required`, and failure
 * states typed `ToolError`s. When the call ends before the task reached a final or waiting
 * state, closing it cancels the task (a bounded wait).
 *
 * @internal
 */
import { Message, type Part, type StreamResponse, type TaskStatus } from "@a2a-js/sdk"
import type { Client } from "@a2a-js/sdk/client"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { ToolError, ToolErrorReason } from "../../domain/Errors.js"
import type { ToolEvent } from "../../domain/Events.js"
import type { ExecutionContext } from "../../domain/ExecutionContext.js"
import type { ToolCall } from "../../domain/Message.js"
import * as Redaction from "../../domain/Redaction.js"
import { showArguments } from "../../domain/Redaction.js"
import type { Options } from "../AgentTools.js"
import * as ToolProvider from "../ToolProvider.js"
import { classify, messageOf, scrub } from "./a2aClient.js"

const cancelTimeoutMs = 5_000

interface Step {
  readonly events: ReadonlyArray<ToolEvent>
  readonly done: boolean
}
const nothing = Effect.succeed<Step>({ events: [], done: false })
const emit = (event: Effect.Effect<ToolEvent>, done: boolean) => Effect.map(event, (e): Step => ({ events: [e], done }))

/** Task states that end a call with a `ToolError`: the reason, and how the message says it. */
const failedStates: Record<number, readonly [ToolErrorReason, string, string]> = {
  4: ["ExecutionFailed", "failed", ""],
  5: ["ExecutionFailed", "cancelled the task", ""],
  7: ["InputRejected", "rejected the request", ""],
  8: ["Unauthorized", "requires authentication", " Supply credentials for it (authContext or headers)."]
}

/**
 * One call's remote task: what has been seen so far, and the cleanup that cancels the task when
 * the call ends before the task reached a final or waiting state.
 */
export class RemoteRun {
  private readonly continuing: boolean
  private settled = false
  private readonly abort = new AbortController()
  private readonly artifacts = new Map<string, Array<Part>>()
  private statusText = ""

  constructor(
    readonly call: ToolCall,
    readonly context: ExecutionContext,
    readonly options: Options,
    readonly secrets: ReadonlyArray<string>,
    public taskId: string | undefined
  ) {
    this.continuing = taskId !== undefined
  }

  events(client: Client, prompt: string): Stream.Stream<ToolEvent, ToolError> {
    const message = Message.fromJSON({
      messageId: crypto.randomUUID(),
      contextId: this.context.contextId,
      ...(this.taskId !== undefined ? { taskId: this.taskId } : {}),
      role: "ROLE_USER",
      parts: [{ text: prompt, mediaType: "text/plain" }]
    })
    const responses = client.sendMessageStream(
      { tenant: "", message, configuration: undefined, metadata: undefined },
      { signal: this.abort.signal }
    )
    // Pulled by hand: `return()` on the SDK's generator would wait for its next event.
    const next = Effect.tryPromise({ try: () => responses.next(), catch: (error) => Option.some(this.failure(error)) })
    return Stream.repeatEffectOption(
      Effect.flatMap(next, (result) => (result.done ? Effect.fail(Option.none()) : Effect.succeed(result.value)))
    ).pipe(
      Stream.mapEffect((response) => this.step(response)),
      Stream.takeUntil((step) => step.done),
      Stream.mapConcat((step) => step.events),
      Stream.concat(Stream.suspend(() => this.settled ? Stream.empty : Stream.fail(this.toolError(
        "Transport",
        `Remote agent "${this.options.name}" at ${this.options.url} closed the stream before the task finished.`
      ))))
    )
  }

  /** Stops reading and, when the remote task is still running, cancels it (bounded wait). */
  close(client: Client): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.abort.abort()
      const id = this.taskId
      if (this.settled || id === undefined) return Effect.void
      return Effect.tryPromise(() =>
        client.cancelTask({ tenant: "", id, metadata: undefined }, { signal: AbortSignal.timeout(cancelTimeoutMs) })
      ).pipe(Effect.catchAll((error) =>
        Effect.logDebug(scrub(`Cancelling remote task ${id} failed: ${messageOf(error.error)}`, this.secrets))
      ), Effect.asVoid)
    })
  }

  failure(error: unknown): ToolError {
    const [reason, message] = classify(error, `remote agent "${this.options.name}" at ${this.options.url}`)
    return this.toolError(reason, message)
  }

  private toolError(reason: ToolErrorReason, message: string): ToolError {
    return ToolProvider.toolError(this.call, reason, scrub(message, this.secrets))
  }

  private step(response: StreamResponse): Effect.Effect<Step, ToolError> {
    const payload = response.payload
    switch (payload?.$case) {
      case "task": {
        this.taskId = payload.value.id
        for (const artifact of payload.value.artifacts) this.artifacts.set(artifact.artifactId, [...artifact.parts])
        // A continued task opens with its old snapshot, still showing the question just answered.
        const state = payload.value.status?.state
        return this.continuing && (state === 6 || state === 8) ? nothing : this.status(payload.value.status)
      }
      case "statusUpdate":
        this.taskId = payload.value.taskId
        return this.status(payload.value.status)
      case "artifactUpdate": {
        const artifact = payload.value.artifact
        if (artifact !== undefined) {
          const before = payload.value.append ? (this.artifacts.get(artifact.artifactId) ?? []) : []
          this.artifacts.set(artifact.artifactId, [...before, ...artifact.parts])
        }
        return nothing
      }
      case "message":
        this.settled = true
        return emit(this.complete(textOf(payload.value.parts), payload.value.parts), true)
      case undefined:
        return nothing
    }
  }

  private status(status: TaskStatus | undefined): Effect.Effect<Step, ToolError> {
    const text = textOf(status?.message?.parts ?? [])
    if (text !== "") this.statusText = text
    const state = status?.state ?? 0
    if (state === 1 || state === 2) { // submitted, working
      return text === "" ? nothing : emit(ToolProvider.toolProgressEvent(this.context, this.call, { message: text }), false)
    }
    if (state === 3) { // completed
      this.settled = true
      const answer = [...this.artifacts.values()].map(textOf).filter((t) => t !== "").join("\n")
      return emit(this.complete(answer || this.statusText, [...this.artifacts.values()].flat()), true)
    }
    if (state === 6) { // input-required: the task waits for the caller's next call
      this.settled = true
      const question = text || `${this.options.name} needs more input.`
      return emit(ToolProvider.toolInputRequiredEvent(this.context, this.call, showArguments(this.call.arguments), question), true)
    }
    const failed = failedStates[state]
    if (failed === undefined) return nothing
    // Auth-required waits for credentials out of band, so that task too is left to the agent.
    this.settled = true
    const [reason, phrase, advice] = failed
    return Effect.fail(this.toolError(reason, `Remote agent "${this.options.name}" ${phrase}: ${text || "no reason given"}.${advice}`))
  }

  private complete(text: string, parts: ReadonlyArray<Part>) {
    const data = parts.flatMap((part) => (part.content?.$case === "data" ? [part.content.value] : []))
    const files = parts.flatMap((part) =>
      part.content?.$case === "url" ? [{ url: part.content.value, mediaType: part.mediaType, filename: part.filename }] : []
    )
    const result = data.length === 0 && files.length === 0
      ? text
      : { text, ...(data.length > 0 ? { data } : {}), ...(files.length > 0 ? { files } : {}) }
    return ToolProvider.toolCompleteEvent(
      this.context,
      this.call,
      this.secrets.length === 0 ? result : Redaction.scrubValue(result, Redaction.scrubber(this.secrets))
    )
  }
}

/**
 * The text of parts, leaving out those marked as the remote model's reasoning (as `AgentServer`
 * marks them): thinking aloud is neither progress to report nor the answer.
 */
const textOf = (parts: ReadonlyArray<Part>): string =>
  parts.map((part) =>
    part.content?.$case === "text" && (part.metadata as { readonly kind?: unknown } | undefined)?.kind !== "reasoning"
      ? part.content.value
      : ""
  ).join("")
