/**
 * How one served run's `AgentEvent`s become A2A task, status and artifact events on the task's
 * bus: the agent's answer streams as appended chunks of one "answer" artifact, tool events
 * become `working` status messages, the model's reasoning `working` status messages whose text
 * part is marked `metadata: { kind: "reasoning" }`, and the first state that is not `working`
 * closes the task.
 */
import { Message } from "@a2a-js/sdk"
import { AgentEvent as A2aEvent, type ExecutionEventBus, type RequestContext } from "@a2a-js/sdk/server"
import type { AgentEvent } from "../../domain/Events.js"

/** A2A task states by name (the SDK's `TaskState` numbers). */
export const State = {
  submitted: 1,
  working: 2,
  completed: 3,
  failed: 4,
  canceled: 5,
  inputRequired: 6,
  rejected: 7
} as const

/** Turns one run's `AgentEvent`s into A2A task, status and artifact events on the bus. */
export class Publisher {
  cancelRequested = false
  waitingForInput = false
  private closed = false
  private answer = ""
  private streamedAnswer = false

  constructor(readonly request: RequestContext, readonly bus: ExecutionEventBus) {}

  start(): void {
    const { contextId, task, taskId, userMessage } = this.request
    this.bus.publish(A2aEvent.task({
      id: taskId,
      contextId,
      status: {
        state: task === undefined ? State.submitted : State.working,
        message: undefined,
        timestamp: new Date().toISOString()
      },
      artifacts: task?.artifacts ?? [],
      history: [...(task?.history ?? []), ...(task === undefined ? [userMessage] : [])],
      metadata: task?.metadata
    }))
  }

  event(event: AgentEvent): void {
    switch (event.type) {
      case "task-created":
        return this.status(State.working)
      case "task-status":
        switch (event.status) {
          case "working":
            return this.status(State.working, event.message)
          case "waiting-input":
            return this.status(State.inputRequired, event.message ?? "The agent needs more input.")
          case "failed":
            return this.status(State.failed, event.message ?? "The agent failed.")
          case "canceled":
            return this.status(State.canceled, event.message)
          case "completed":
            return
        }
        return
      case "content-delta":
        this.answer += event.delta
        this.artifact(event.delta, this.streamedAnswer, false)
        this.streamedAnswer = true
        return
      case "reasoning-delta":
        return this.status(State.working, event.delta, reasoningMeta, reasoningPart)
      case "task-complete":
        this.answer = event.content
        this.artifact(event.content, false, true)
        return this.status(State.completed, undefined, { steps: event.steps, usage: event.usage })
      case "tool-start":
        return this.status(State.working, `Calling tool ${event.toolName}`, toolMeta(event))
      case "tool-progress":
        return this.status(State.working, `${event.toolName}: ${event.message ?? progressOf(event)}`, toolMeta(event))
      case "tool-complete":
        return this.status(State.working, `Tool ${event.toolName} finished`, toolMeta(event))
      case "tool-error":
        return this.status(State.working, `Tool ${event.toolName} failed: ${event.error}`, toolMeta(event))
      case "tool-input-required":
        return this.status(State.working, `Tool ${event.toolName} is waiting for input`, toolMeta(event))
      default:
        return
    }
  }

  /** The run ended without a final state of its own: what it said so far is the answer. */
  finish(): void {
    if (this.closed) return
    this.artifact(this.answer, false, true)
    this.status(State.completed)
  }

  cancelled(): void {
    const open = !this.closed || (this.cancelRequested && this.waitingForInput)
    if (open) this.bus.publish(cancelledEvent(this.request.taskId, this.request.contextId))
    this.closed = true
  }

  /** Publishes a status; its message's text part carries `partMetadata` when given. */
  status(state: number, text?: string, metadata?: Record<string, unknown>, partMetadata?: Record<string, unknown>): void {
    if (this.closed) return
    if (state !== State.working) this.closed = true
    this.waitingForInput = state === State.inputRequired
    const { contextId, taskId } = this.request
    this.bus.publish(A2aEvent.statusUpdate({
      taskId,
      contextId,
      status: {
        state,
        message: text === undefined ? undefined : agentMessage(contextId, taskId, text, partMetadata),
        timestamp: new Date().toISOString()
      },
      metadata
    }))
  }

  private artifact(text: string, append: boolean, lastChunk: boolean): void {
    if (this.closed) return
    const { contextId, taskId } = this.request
    this.bus.publish(A2aEvent.artifactUpdate({
      taskId,
      contextId,
      artifact: {
        artifactId: "answer",
        name: "answer",
        description: "The agent's answer",
        parts: agentMessage(contextId, taskId, text).parts,
        metadata: undefined,
        extensions: []
      },
      append,
      lastChunk,
      metadata: undefined
    }))
  }
}

export const cancelledEvent = (taskId: string, contextId: string) =>
  A2aEvent.statusUpdate({
    taskId,
    contextId,
    status: { state: State.canceled, message: undefined, timestamp: new Date().toISOString() },
    metadata: undefined
  })

/** The text parts of a message, joined. */
export const textOf = (message: Message): string =>
  message.parts.map((part) => (part.content?.$case === "text" ? part.content.value : "")).join("")

const agentMessage = (contextId: string, taskId: string, text: string, partMetadata?: Record<string, unknown>): Message =>
  Message.fromJSON({
    messageId: crypto.randomUUID(),
    contextId,
    taskId,
    role: "ROLE_AGENT",
    parts: [partMetadata === undefined ? { text, mediaType: "text/plain" } : { text, mediaType: "text/plain", metadata: partMetadata }]
  })

/** How a reasoning status is marked: on its text part (what a reader of parts sees) and on the update. */
const reasoningPart = { kind: "reasoning" } as const
const reasoningMeta = { event: "reasoning-delta" } as const

const toolMeta = (event: { readonly type: string; readonly toolName: string; readonly toolCallId: string }) => ({
  event: event.type,
  toolName: event.toolName,
  toolCallId: event.toolCallId
})

const progressOf = (event: { readonly progress?: number | undefined; readonly total?: number | undefined }): string =>
  event.progress === undefined ? "working" : event.total === undefined ? `${event.progress}` : `${event.progress}/${event.total}`
