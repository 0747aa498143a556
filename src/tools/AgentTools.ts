/**
 * Remote agents as tools (seed 001, "Remote Agents"): an agent that speaks A2A is offered to the
 * model as one tool taking `{ prompt }`. A call streams the remote task through the official
 * `@a2a-js/sdk` client: status updates become `tool-progress`, the final artifacts or message
 * become `tool-complete`, and the task's failure states become typed `ToolError`s. Interrupting
 * the call (or its timeout) cancels the remote task.
 *
 * @since 0.1.0
 */
import { AgentCard, Message, type Part, type StreamResponse, type TaskStatus } from "@a2a-js/sdk"
import {
  type Client,
  ClientFactory,
  ClientFactoryOptions,
  DefaultAgentCardResolver,
  JsonRpcTransportFactory,
  RestTransportFactory
} from "@a2a-js/sdk/client"
import { A2AError } from "@a2a-js/sdk/errors"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as JSONSchema from "effect/JSONSchema"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type { ToolError, ToolErrorReason } from "../domain/Errors.js"
import type { ToolEvent } from "../domain/Events.js"
import type { AuthContext, ExecutionContext } from "../domain/ExecutionContext.js"
import type { ToolCall, ToolDefinition } from "../domain/Message.js"
import * as ToolProvider from "./ToolProvider.js"
import * as Redaction from "../domain/Redaction.js"
import { revealArguments, showArguments } from "../domain/Redaction.js"

/** Header values; secrets may stay `Redacted` until the request is built. @since 0.1.0 */
export type HeaderValues = Readonly<Record<string, string | Redacted.Redacted<string>>>

/**
 * Extra request headers: a fixed set, or a function of the caller's identity (called for every
 * execution, and with `undefined` when the agent card is fetched). They override the default
 * `Authorization: Bearer <token>` taken from `authContext.credentials.accessToken`.
 *
 * @since 0.1.0
 */
export type HeadersOption =
  | HeaderValues
  | ((authContext: AuthContext | undefined) => HeaderValues | Effect.Effect<HeaderValues>)

/** How to reach a remote agent and how to offer it to the model. @since 0.1.0 */
export interface Options {
  /** The agent's name; the tool name is derived from it unless `toolName` is given. */
  readonly name: string
  readonly description: string
  /** The agent's base URL (its card is under `/.well-known/`) or the card's own URL. */
  readonly url: string
  readonly headers?: HeadersOption
  readonly toolName?: string
  /** Bound on one whole call, remote task included (default 5 minutes). */
  readonly timeout?: Duration.DurationInput
}

/** Options of `fromUrl`; name and description default to the card's. @since 0.1.0 */
export type FromUrlOptions = Partial<Omit<Options, "url">>

const defaultTimeout = Duration.minutes(5)
const cardTimeout = Duration.seconds(10)
const cancelTimeoutMs = 5_000
const maxWaitingTasks = 1_000

const Arguments = Schema.Struct({
  prompt: Schema.String.pipe(Schema.minLength(1)).annotations({
    description: "What to ask the agent, in plain language. To answer a question the agent asked, put the answer here."
  })
})
const decodeArguments = Schema.decodeUnknownEither(Arguments, { onExcessProperty: "error" })

/**
 * A tool name made from an agent name: characters outside `[a-zA-Z0-9_-]` become `_`, at most
 * 64 characters (what model APIs accept).
 *
 * @since 0.1.0
 */
export const toolNameFor = (agentName: string): string =>
  agentName.replace(/[^a-zA-Z0-9_-]+/g, "_").replace(/^_+|_+$/g, "").slice(0, 64) || "agent"

/**
 * A remote A2A agent as a tool provider. The agent card is fetched on the first call and kept.
 *
 * When the remote task asks for input, the call ends with a `tool-input-required` event whose
 * `message` is the agent's question (no `tool-complete` follows). To answer, call the tool again
 * in the same `contextId` with the answer as `prompt`: the provider then continues the waiting
 * remote task instead of starting a new one.
 *
 * @example
 * ```ts
 * const research = AgentToolProvider.from({
 *   name: "Research Copilot",
 *   description: "Multi-tool research assistant",
 *   url: "https://agent.example.com"
 * })
 * ```
 * @since 0.1.0
 */
export const from = (options: Options): ToolProvider.ToolProvider => {
  const cached = Ref.unsafeMake(Option.none<AgentCard>())
  const card = (call: ToolCall) =>
    Effect.flatMap(Ref.get(cached), Option.match({
      onSome: Effect.succeed,
      onNone: () =>
        fetchCard(options.url, options.headers).pipe(
          Effect.mapError(([reason, message]) => ToolProvider.toolError(call, reason, message)),
          Effect.tap((card) => Ref.set(cached, Option.some(card)))
        )
    }))
  return make(options, card)
}

/**
 * Fetches an agent's card (`/.well-known/agent-card.json`, falling back to
 * `/.well-known/agent.json`) and offers the agent as a tool named after it, described by the
 * card's description and skills. `cardUrl` may be the agent's base URL or the card's own URL.
 *
 * @since 0.1.0
 */
export const fromUrl = (
  cardUrl: string,
  options: FromUrlOptions = {}
): Effect.Effect<ToolProvider.ToolProvider, ToolError> =>
  fetchCard(cardUrl, options.headers).pipe(
    Effect.mapError(([reason, message]) =>
      ToolProvider.toolError({ id: "", name: options.toolName ?? cardUrl, arguments: {} }, reason, message)
    ),
    Effect.map((card) =>
      make(
        { ...options, url: cardUrl, name: options.name ?? card.name, description: options.description ?? describe(card) },
        () => Effect.succeed(card)
      )
    ),
    Effect.withSpan("AgentToolProvider.fromUrl", { attributes: { "agent.url": cardUrl } })
  )

/** The seed's name for this module's constructors. @since 0.1.0 */
export const AgentToolProvider = { from, fromUrl } as const

const describe = (card: AgentCard): string => {
  const skills = card.skills.map((skill) => `- ${skill.name}${skill.description ? `: ${skill.description}` : ""}`)
  return skills.length === 0 ? card.description : `${card.description}\nSkills:\n${skills.join("\n")}`
}

const make = (
  options: Options,
  card: (call: ToolCall) => Effect.Effect<AgentCard, ToolError>
): ToolProvider.ToolProvider => {
  const definition: ToolDefinition = {
    name: options.toolName ?? toolNameFor(options.name),
    description: options.description,
    parameters: JSONSchema.make(Arguments) as unknown as Record<string, unknown>
  }
  // Remote tasks waiting for the caller's answer, by contextId (see `from`).
  const waitingTasks = new Map<string, string>()
  const timeout = Duration.decode(options.timeout ?? defaultTimeout)

  const execute = (call: ToolCall, context: ExecutionContext): Stream.Stream<ToolEvent, ToolError> =>
    Stream.unwrapScoped(Effect.gen(function*() {
      if (call.name !== definition.name) {
        return yield* ToolProvider.toolError(call, "NotFound", `This provider offers "${definition.name}", not "${call.name}".`)
      }
      const { prompt } = yield* Effect.mapError(decodeArguments(revealArguments(call.arguments)), (error) =>
        ToolProvider.toolError(call, "InvalidArguments", `Invalid arguments: ${ParseResult.TreeFormatter.formatErrorSync(error)}`))
      const agentCard = yield* card(call)
      const headers = yield* resolveHeaders(options.headers, context.authContext)
      const continuing = waitingTasks.get(context.contextId)
      waitingTasks.delete(context.contextId)
      const run = new RemoteRun(call, context, options, [
        ...Redaction.secretsOfHeaders(headers),
        ...Redaction.secretsOfArguments(call.arguments),
        ...(context.authContext?.credentials !== undefined ? [Redacted.value(context.authContext.credentials.accessToken)] : [])
      ], continuing)
      const client = yield* Effect.tryPromise({
        try: () => clientFactory(headers).createFromAgentCard(agentCard),
        catch: (error) => run.failure(error)
      })
      yield* Effect.addFinalizer(() => run.close(client))
      const onInputRequired = Effect.sync(() => {
        if (run.taskId === undefined) return
        if (waitingTasks.size >= maxWaitingTasks) waitingTasks.delete(waitingTasks.keys().next().value!)
        waitingTasks.set(context.contextId, run.taskId)
      })
      return Stream.concat(
        Stream.fromEffect(ToolProvider.toolStartEvent(context, call)),
        run.events(client, prompt).pipe(Stream.tap((event) => event.type === "tool-input-required" ? onInputRequired : Effect.void))
      )
    })).pipe(
      Stream.interruptWhen(Effect.delay(
        Effect.fail(ToolProvider.toolError(
          call,
          "Timeout",
          `Remote agent "${options.name}" did not finish within ${Duration.format(timeout)}; the remote task was cancelled.`
        )),
        timeout
      )),
      Stream.withSpan("AgentToolProvider.execute", {
        attributes: { "tool.name": definition.name, "agent.url": options.url, "tool.call_id": call.id }
      })
    )

  return {
    name: definition.name,
    getTools: Effect.succeed([definition]),
    getTool: (name) => Effect.succeed(name === definition.name ? Option.some(definition) : Option.none()),
    execute
  }
}

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
class RemoteRun {
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

const textOf = (parts: ReadonlyArray<Part>): string =>
  parts.map((part) => (part.content?.$case === "text" ? part.content.value : "")).join("")

/** An HTTP answer refusing our credentials; raised inside `fetch` so the status is not lost. */
class RefusedByServer extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`)
  }
}

const connectionCodes = new Set(
  ["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EHOSTUNREACH", "ETIMEDOUT", "EAI_AGAIN", "UND_ERR_SOCKET", "UND_ERR_CONNECT_TIMEOUT"]
)

/** The first `code` along an error's `cause` chain (`fetch` puts the socket's there). */
const codeOf = (error: unknown, depth = 0): unknown =>
  error instanceof Object && depth < 5 ? ((error as { code?: unknown }).code ?? codeOf((error as Error).cause, depth + 1)) : undefined

/** Maps what the SDK or `fetch` threw; `peer` names the other side of the call. */
const classify = (error: unknown, peer: string): readonly [ToolErrorReason, string] => {
  if (error instanceof RefusedByServer) {
    return ["Unauthorized", `The ${peer} refused the credentials (HTTP ${error.status}). Check the token or headers configured for it.`]
  }
  if (error instanceof A2AError) return ["ExecutionFailed", `The ${peer} answered with an error: ${error.message}`]
  const code = codeOf(error)
  if (typeof code === "string" && connectionCodes.has(code)) {
    return ["Transport", `Cannot reach the ${peer} (${code}). Check that the agent is running and that the URL is right.`]
  }
  return ["Transport", `Talking to the ${peer} failed: ${messageOf(error)}`]
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** Never lets a header value (a token) reach an error or a log line. */
const scrub = (message: string, secrets: ReadonlyArray<string>): string => Redaction.scrub(message, secrets)

const resolveHeaders = (option: HeadersOption | undefined, authContext: AuthContext | undefined) =>
  Effect.gen(function*() {
    const token = authContext?.credentials?.accessToken
    const headers: Record<string, string> = token !== undefined ? { authorization: `Bearer ${Redacted.value(token)}` } : {}
    const extra = typeof option === "function" ? option(authContext) : option ?? {}
    for (const [key, value] of Object.entries(Effect.isEffect(extra) ? yield* extra : extra)) {
      headers[key.toLowerCase()] = Redacted.isRedacted(value) ? Redacted.value(value) : value
    }
    return headers
  })

/** A `fetch` that adds the call's headers and turns 401/403 into `RefusedByServer`. */
const fetchWith = (headers: Record<string, string>, signal?: AbortSignal): typeof fetch => async (input, init) => {
  const merged = new Headers(init?.headers)
  for (const [key, value] of Object.entries(headers)) merged.set(key, value)
  const response = await fetch(input, { ...init, headers: merged, signal: init?.signal ?? signal ?? null })
  if (response.status === 401 || response.status === 403) {
    await response.body?.cancel()
    throw new RefusedByServer(response.status)
  }
  return response
}

const clientFactory = (headers: Record<string, string>): ClientFactory => {
  const fetchImpl = fetchWith(headers)
  // v0.3 agents are still common, so their cards and transports are accepted too.
  return new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
    cardResolver: cardResolver,
    transports: [
      new JsonRpcTransportFactory({ fetchImpl, legacyCompat: { enabled: true } }),
      new RestTransportFactory({ fetchImpl, legacyCompat: { enabled: true } })
    ]
  }))
}
const cardResolver = new DefaultAgentCardResolver({ legacyCompat: { enabled: true } })

/** The card URLs to try: the given URL when it names a JSON file, else the two well-known paths. */
const cardUrls = (url: string): ReadonlyArray<string> => {
  const parsed = new URL(url)
  if (parsed.pathname.endsWith(".json")) return [parsed.href]
  const base = parsed.href.endsWith("/") ? parsed.href : `${parsed.href}/`
  return [new URL(".well-known/agent-card.json", base).href, new URL(".well-known/agent.json", base).href]
}

type CardFailure = readonly [ToolErrorReason, string]

const fetchCard = (url: string, option: HeadersOption | undefined): Effect.Effect<AgentCard, CardFailure> =>
  Effect.gen(function*() {
    const urls = yield* Effect.try({
      try: () => cardUrls(url),
      catch: (): CardFailure => ["InvalidArguments", `"${url}" is not a valid URL for an A2A agent.`]
    })
    const headers = yield* resolveHeaders(option, undefined)
    const failed = (cardUrl: string) => (error: unknown): CardFailure => {
      const [reason, message] = classify(error, `A2A agent card at ${cardUrl}`)
      return [reason, scrub(message, Redaction.secretsOfHeaders(headers))]
    }
    const misses: Array<string> = []
    for (const cardUrl of urls) {
      const response = yield* Effect.tryPromise({
        try: (signal) => fetchWith(headers, signal)(cardUrl, { headers: { "A2A-Version": "1.0" } }),
        catch: failed(cardUrl)
      }).pipe(Effect.timeoutFail({
        duration: cardTimeout,
        onTimeout: () => failed(cardUrl)(new Error(`no answer within ${Duration.format(cardTimeout)}`))
      }))
      if (!response.ok) {
        misses.push(`${cardUrl} answered HTTP ${response.status}`)
        continue
      }
      const raw = yield* Effect.tryPromise({ try: () => response.json(), catch: failed(cardUrl) })
      return yield* Effect.try({ try: () => normalize(cardResolver.normalizeAgentCard(raw)), catch: failed(cardUrl) })
    }
    return yield* Effect.fail<CardFailure>(["Transport", `No A2A agent card found: ${misses.join("; ")}. Check the agent's URL.`])
  }).pipe(Effect.withSpan("AgentToolProvider.fetchCard", { attributes: { "agent.url": url } }))

/** Fills the fields a card on the wire may omit, so the rest of the code can rely on them. */
const normalize = (card: AgentCard): AgentCard => {
  if (typeof card?.name !== "string") throw new Error("the document is not an agent card (it has no name)")
  return { ...AgentCard.fromJSON({}), ...card, skills: card.skills ?? [], supportedInterfaces: card.supportedInterfaces ?? [] }
}
