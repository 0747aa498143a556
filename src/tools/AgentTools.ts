/**
 * Remote agents as tools (seed 001, "Remote Agents"): an agent that speaks A2A is offered to the
 * model as one tool taking `{ prompt }`. A call streams the remote task through the official
 * `@a2a-js/sdk` client: status updates become `tool-progress`, the final artifacts or message
 * become `tool-complete`, and the task's failure states become typed `ToolError`s. Interrupting
 * the call (or its timeout) cancels the remote task.
 *
 * @since 0.1.0
 */
import type { AgentCard } from "@a2a-js/sdk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as JSONSchema from "effect/JSONSchema"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type { ToolError } from "../domain/Errors.js"
import type { ToolEvent } from "../domain/Events.js"
import type { AuthContext, ExecutionContext } from "../domain/ExecutionContext.js"
import type { ToolCall, ToolDefinition } from "../domain/Message.js"
import * as Redaction from "../domain/Redaction.js"
import { revealArguments } from "../domain/Redaction.js"
import { clientFactory, fetchCard, resolveHeaders } from "./internal/a2aClient.js"
import { RemoteRun } from "./internal/agentRun.js"
import * as ToolProvider from "./ToolProvider.js"

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
