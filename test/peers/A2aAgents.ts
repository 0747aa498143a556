/**
 * Real A2A agents for tests, built from the `@a2a-js/sdk` server pieces (`DefaultRequestHandler`,
 * `InMemoryTaskStore`, `JsonRpcTransportHandler`) on a plain `node:http` server bound to
 * 127.0.0.1 on an ephemeral port. Each peer records what it saw (JSON-RPC methods, request
 * headers, context ids, created and cancelled tasks) so tests can assert on the server side.
 */
import { AgentCard, formatSSEErrorEvent, formatSSEEvent, Message, SSE_HEADERS, type Task } from "@a2a-js/sdk"
import {
  AgentEvent,
  type AgentExecutor,
  DefaultRequestHandler,
  type ExecutionEventBus,
  InMemoryTaskStore,
  JsonRpcTransportHandler,
  type RequestContext,
  ServerCallContext
} from "@a2a-js/sdk/server"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"

/** What a peer observed, for server-side assertions. */
export interface Observed {
  readonly methods: Array<string>
  readonly authorization: Array<string | undefined>
  readonly contextIds: Array<string>
  readonly createdTasks: Array<string>
  readonly cancelledTasks: Array<string>
  readonly prompts: Array<string>
}

export interface Peer {
  /** Base URL (the card lives under `/.well-known/`). */
  readonly url: string
  readonly observed: Observed
}

/** The agent logic of a peer; it gets the peer's observations to record into. */
export type Behaviour = (observed: Observed) => AgentExecutor

export interface PeerOptions {
  readonly name: string
  readonly description: string
  readonly behaviour: Behaviour
  /** Which well-known file serves the card; the other one answers 404. */
  readonly cardFile?: "agent-card.json" | "agent.json"
  readonly skills?: ReadonlyArray<{ readonly id: string; readonly name: string; readonly description: string }>
  /** When set, JSON-RPC requests without `Authorization: Bearer <this>` get HTTP 401. */
  readonly requireBearer?: string
}

const rpcPath = "/a2a/jsonrpc"

/** Starts a peer for the lifetime of the scope. */
export const serve = (options: PeerOptions): Effect.Effect<Peer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const observed: Observed = {
      methods: [],
      authorization: [],
      contextIds: [],
      createdTasks: [],
      cancelledTasks: [],
      prompts: []
    }
    // The card names the server's own URL, so both are made once the port is known.
    let card: AgentCard | undefined
    let transport: JsonRpcTransportHandler | undefined
    const server = Http.createServer((req, res) => {
      void route(req, res)
    })
    const route = async (req: Http.IncomingMessage, res: Http.ServerResponse) => {
      const path = new URL(req.url ?? "/", "http://peer").pathname
      if (req.method === "GET" && path === `/.well-known/${options.cardFile ?? "agent-card.json"}`) {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(AgentCard.toJSON(card!)))
        return
      }
      if (req.method !== "POST" || path !== rpcPath) {
        res.writeHead(404).end()
        return
      }
      const body = await readBody(req)
      if (options.requireBearer !== undefined && req.headers.authorization !== `Bearer ${options.requireBearer}`) {
        res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ error: "unauthorized" }))
        return
      }
      const parsed = JSON.parse(body) as { method?: string; id?: number }
      observed.methods.push(parsed.method ?? "")
      observed.authorization.push(req.headers.authorization)
      const context = new ServerCallContext({ state: new Map([["headers", req.headers]]) })
      const result = await transport!.handle(body, context)
      if (Symbol.asyncIterator in (result as object)) {
        res.writeHead(200, SSE_HEADERS)
        try {
          for await (const event of result as AsyncGenerator<unknown>) res.write(formatSSEEvent(event))
        } catch (error) {
          res.write(formatSSEErrorEvent({ jsonrpc: "2.0", id: parsed.id ?? null, error: { message: String(error) } }))
        }
        res.end()
        return
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(result))
    }
    yield* Effect.acquireRelease(
      Effect.async<void>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.void))
      }),
      () =>
        Effect.async<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    card = AgentCard.fromJSON({
      name: options.name,
      description: options.description,
      version: "1.0.0",
      supportedInterfaces: [{ url: `${url}${rpcPath}`, protocolBinding: "JSONRPC", protocolVersion: "1.0" }],
      capabilities: { streaming: true },
      defaultInputModes: ["text/plain"],
      defaultOutputModes: ["text/plain"],
      skills: (options.skills ?? []).map((skill) => ({ ...skill, tags: [] }))
    })
    transport = new JsonRpcTransportHandler(
      new DefaultRequestHandler(card, new InMemoryTaskStore(), options.behaviour(observed))
    )
    return { url, observed }
  })

const readBody = (req: Http.IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

// ---------------------------------------------------------------------------------------------
// Building blocks for behaviours

const agentMessage = (ctx: RequestContext, text: string): Message =>
  Message.fromJSON({
    messageId: crypto.randomUUID(),
    contextId: ctx.contextId,
    taskId: ctx.taskId,
    role: "ROLE_AGENT",
    parts: [{ text }]
  })

const promptOf = (ctx: RequestContext): string =>
  ctx.userMessage.parts.map((part) => (part.content?.$case === "text" ? part.content.value : "")).join("")

const publishTask = (ctx: RequestContext, bus: ExecutionEventBus, observed: Observed): void => {
  observed.contextIds.push(ctx.contextId)
  observed.prompts.push(promptOf(ctx))
  if (ctx.task === undefined) observed.createdTasks.push(ctx.taskId)
  const task: Task = ctx.task ?? {
    id: ctx.taskId,
    contextId: ctx.contextId,
    status: { state: 1, message: undefined, timestamp: new Date().toISOString() },
    artifacts: [],
    history: [ctx.userMessage],
    metadata: undefined
  }
  bus.publish(AgentEvent.task(task))
}

type StateName = "WORKING" | "COMPLETED" | "FAILED" | "CANCELED" | "INPUT_REQUIRED" | "REJECTED" | "AUTH_REQUIRED"
const stateNumber: Record<StateName, number> = {
  WORKING: 2,
  COMPLETED: 3,
  FAILED: 4,
  CANCELED: 5,
  INPUT_REQUIRED: 6,
  REJECTED: 7,
  AUTH_REQUIRED: 8
}

const publishStatus = (ctx: RequestContext, bus: ExecutionEventBus, state: StateName, text?: string): void =>
  bus.publish(
    AgentEvent.statusUpdate({
      taskId: ctx.taskId,
      contextId: ctx.contextId,
      status: {
        state: stateNumber[state],
        message: text === undefined ? undefined : agentMessage(ctx, text),
        timestamp: new Date().toISOString()
      },
      metadata: undefined
    })
  )

const publishArtifact = (
  ctx: RequestContext,
  bus: ExecutionEventBus,
  artifact: { readonly id: string; readonly name: string; readonly parts: ReadonlyArray<unknown> },
  append: boolean
): void =>
  bus.publish(
    AgentEvent.artifactUpdate({
      taskId: ctx.taskId,
      contextId: ctx.contextId,
      artifact: {
        artifactId: artifact.id,
        name: artifact.name,
        description: "",
        parts: Message.fromJSON({ parts: artifact.parts }).parts,
        metadata: undefined,
        extensions: []
      },
      append,
      lastChunk: false,
      metadata: undefined
    })
  )

const noCancel = async () => {}

// ---------------------------------------------------------------------------------------------
// Behaviours

/** Two status updates, a text artifact streamed in two chunks, a data artifact, then completed. */
export const streaming: Behaviour = (observed) => ({
  execute: async (ctx, bus) => {
    publishTask(ctx, bus, observed)
    publishStatus(ctx, bus, "WORKING", "Looking it up")
    publishStatus(ctx, bus, "WORKING", "Almost there")
    publishArtifact(ctx, bus, { id: "answer", name: "answer", parts: [{ text: "The answer is " }] }, false)
    publishArtifact(ctx, bus, { id: "answer", name: "answer", parts: [{ text: "42." }] }, true)
    publishArtifact(ctx, bus, { id: "facts", name: "facts", parts: [{ data: { answer: 42 } }] }, false)
    publishStatus(ctx, bus, "COMPLETED")
    bus.finished()
  },
  cancelTask: noCancel
})

/** Answers with a completed status whose message echoes the prompt (no artifacts). */
export const echo: Behaviour = (observed) => ({
  execute: async (ctx, bus) => {
    publishTask(ctx, bus, observed)
    publishStatus(ctx, bus, "COMPLETED", `echo: ${promptOf(ctx)}`)
    bus.finished()
  },
  cancelTask: noCancel
})

/**
 * Thinks aloud (a working status whose text part is marked as reasoning, as `AgentServer` sends a
 * model's reasoning), says what it does, then completes with a status message and no artifacts.
 */
export const thinksAloud: Behaviour = (observed) => ({
  execute: async (ctx, bus) => {
    publishTask(ctx, bus, observed)
    bus.publish(AgentEvent.statusUpdate({
      taskId: ctx.taskId,
      contextId: ctx.contextId,
      status: {
        state: stateNumber.WORKING,
        message: Message.fromJSON({
          messageId: crypto.randomUUID(),
          contextId: ctx.contextId,
          taskId: ctx.taskId,
          role: "ROLE_AGENT",
          parts: [{ text: "Let me think about the user's secret plan", metadata: { kind: "reasoning" } }]
        }),
        timestamp: new Date().toISOString()
      },
      metadata: undefined
    }))
    publishStatus(ctx, bus, "WORKING", "Looking it up")
    publishStatus(ctx, bus, "COMPLETED", "Done: 42.")
    bus.finished()
  },
  cancelTask: noCancel
})

/** Ends in the given terminal or interrupted state with a message. */
export const endsIn = (state: "FAILED" | "REJECTED" | "CANCELED" | "AUTH_REQUIRED", text: string): Behaviour =>
(observed) => ({
  execute: async (ctx, bus) => {
    publishTask(ctx, bus, observed)
    publishStatus(ctx, bus, "WORKING", "Starting")
    publishStatus(ctx, bus, state, text)
    bus.finished()
  },
  cancelTask: noCancel
})

/** Asks which city on the first turn; answers about that city when the task is continued. */
export const asksForInput: Behaviour = (observed) => ({
  execute: async (ctx, bus) => {
    publishTask(ctx, bus, observed)
    if (ctx.task === undefined) {
      publishStatus(ctx, bus, "INPUT_REQUIRED", "Which city?")
    } else {
      publishStatus(ctx, bus, "COMPLETED", `Sunny in ${promptOf(ctx)}`)
    }
    bus.finished()
  },
  cancelTask: noCancel
})

/** Reports progress, then works until cancelled; `cancelTask` records the task and ends it. */
export const slow: Behaviour = (observed) => {
  const waiting = new Map<string, () => void>()
  return {
    execute: async (ctx, bus) => {
      publishTask(ctx, bus, observed)
      publishStatus(ctx, bus, "WORKING", "Started a long job")
      await new Promise<void>((resolve) => waiting.set(ctx.taskId, resolve))
    },
    cancelTask: async (taskId, bus) => {
      observed.cancelledTasks.push(taskId)
      bus.publish(
        AgentEvent.statusUpdate({
          taskId,
          contextId: observed.contextIds[observed.createdTasks.indexOf(taskId)] ?? "",
          status: { state: stateNumber.CANCELED, message: undefined, timestamp: new Date().toISOString() },
          metadata: undefined
        })
      )
      waiting.get(taskId)?.()
      waiting.delete(taskId)
    }
  }
}
