/**
 * Tools implemented in the agent's own process (seed 001's `tool()` and `localTools`). A tool
 * is data (name, description, an Effect Schema for its parameters) plus a handler returning an
 * `Effect`; the handler's requirements show in the provider's type and are provided by a Layer,
 * so tests can run the same tool against other services.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as JSONSchema from "effect/JSONSchema"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import * as Stream from "effect/Stream"
import { ToolError } from "../domain/Errors.js"
import type { ToolEvent } from "../domain/Events.js"
import type { ExecutionContext } from "../domain/ExecutionContext.js"
import type { ToolCall, ToolDefinition } from "../domain/Message.js"
import type { ToolProvider } from "./ToolProvider.js"
import { toolCompleteEvent, toolError, toolProgressEvent, toolStartEvent } from "./ToolProvider.js"

/** What a handler may report while it works; each report becomes a `tool-progress` event. @since 0.1.0 */
export interface Progress {
  readonly progress?: number
  readonly total?: number
  readonly message?: string
}

/**
 * The second argument of a handler: the execution context, the call as the model made it, and
 * `progress`, which emits a `tool-progress` event (delivered before the call's `tool-complete`).
 *
 * @since 0.1.0
 */
export interface ToolContext {
  readonly context: ExecutionContext
  readonly call: ToolCall
  readonly progress: (progress: Progress) => Effect.Effect<void>
}

/**
 * A local tool, made by `tool`. `R` is what its handler needs from the environment. `invoke`
 * decodes the arguments and runs the handler; it is what `localTools` calls and is not meant
 * to be called directly.
 *
 * @since 0.1.0
 */
export interface LocalTool<out R = never> {
  readonly name: string
  readonly description: string
  readonly definition: ToolDefinition
  /** Argument names whose values never appear in events or errors. */
  readonly sensitive: ReadonlyArray<string>
  /** The tool's own time limit; `undefined` means the provider's default. */
  readonly timeout: Duration.Duration | undefined
  readonly invoke: (args: Record<string, unknown>, context: ToolContext) => Effect.Effect<unknown, unknown, R>
}

/** The requirements of a union of local tools. @since 0.1.0 */
export type Requirements<T> = T extends LocalTool<infer R> ? R : never

/** Replaces sensitive argument values in events and error messages. @since 0.1.0 */
export const REDACTED = "<redacted>"

const validName = /^[a-zA-Z0-9_-]{1,64}$/

/**
 * Defines a local tool. `parameters` must be an object schema (a `Schema.Struct` or a
 * `Schema.Class`); its JSON Schema, made once with `JSONSchema.make` rules and without the
 * `$schema` key that some providers reject, is what the model sees. Arguments are decoded with
 * all errors reported and excess properties refused, matching the `additionalProperties: false`
 * the model is shown. The handler's value is the result as it is (it should be JSON data; the
 * seed's `{ success, result }` envelope is not unwrapped, since real data may have those
 * fields): fail the Effect to report a failure. An invalid name or a non-object schema is a
 * programming error and throws at once.
 *
 * @example
 * ```ts
 * const greet = tool({
 *   name: "greet",
 *   description: "Greets someone by name.",
 *   parameters: Schema.Struct({ name: Schema.String }),
 *   handler: ({ name }, { progress }) =>
 *     progress({ message: "thinking" }).pipe(Effect.as({ greeting: `Hello, ${name}!` }))
 * })
 * ```
 * @since 0.1.0
 */
export const tool = <A, I, E, R>(options: {
  readonly name: string
  readonly description: string
  readonly parameters: Schema.Schema<A, I, never>
  readonly handler: (args: A, context: ToolContext) => Effect.Effect<unknown, E, R>
  readonly timeout?: Duration.DurationInput
  readonly sensitive?: ReadonlyArray<Extract<keyof A, string>>
}): LocalTool<R> => {
  const { description, handler, name, parameters } = options
  if (!validName.test(name)) {
    throw new Error(
      `tool(): invalid tool name ${JSON.stringify(name)}; use 1 to 64 letters, digits, "_" or "-" (what model APIs accept).`
    )
  }
  const decode = Schema.decodeUnknown(parameters, { errors: "all", onExcessProperty: "error" })
  return {
    name,
    description,
    definition: { name, description, parameters: parametersJsonSchema(name, parameters) },
    sensitive: options.sensitive ?? [],
    timeout: options.timeout !== undefined ? Duration.decode(options.timeout) : undefined,
    invoke: (args, context) =>
      Effect.flatMap(
        Effect.mapError(decode(args), (error) => invalidArguments(context.call, error)),
        (decoded) => handler(decoded, context)
      )
  }
}

const parametersJsonSchema = (name: string, schema: Schema.Schema.Any): Record<string, unknown> => {
  const encoded = SchemaAST.encodedAST(schema.ast)
  // `JSONSchema` renders an empty struct as "object or array"; a tool without parameters wants an empty object.
  if (SchemaAST.isTypeLiteral(encoded) && encoded.propertySignatures.length === 0 && encoded.indexSignatures.length === 0) {
    return { type: "object", properties: {}, required: [], additionalProperties: false }
  }
  const definitions: Record<string, JSONSchema.JsonSchema7> = {}
  // "skip" inlines a top-level `$ref` (a Schema.Class), because model APIs want `type: "object"` at the root.
  const root = JSONSchema.fromAST(schema.ast, { definitions, topLevelReferenceStrategy: "skip" })
  if (!("type" in root) || root.type !== "object") {
    throw new Error(
      `tool(): the parameters of tool "${name}" must be an object schema (Schema.Struct or Schema.Class), got ${
        JSON.stringify(root).slice(0, 120)
      }.`
    )
  }
  return Object.keys(definitions).length === 0 ? { ...root } : { ...root, $defs: definitions }
}

/** Issues found while decoding: a marker the error mapping recognises. */
class InvalidArgumentsFailure {
  constructor(readonly message: string, readonly issues: ReadonlyArray<{ path: string; message: string }>) {}
}

const invalidArguments = (call: ToolCall, error: ParseResult.ParseError): InvalidArgumentsFailure => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => ({
    path: formatPath(issue.path),
    message: issue.message
  }))
  const listed = issues.map((issue) => `${issue.path}: ${issue.message}`).join("; ")
  return new InvalidArgumentsFailure(
    `Invalid arguments for tool "${call.name}": ${listed}. Correct the arguments to match the tool's parameters and call it again.`,
    issues
  )
}

const formatPath = (path: ReadonlyArray<PropertyKey>): string => {
  if (path.length === 0) return "(arguments)"
  let out = ""
  for (const key of path) out += typeof key === "number" ? `[${key}]` : out === "" ? String(key) : `.${String(key)}`
  return out
}

/**
 * A provider of local tools (seed 001's `localTools`). `R` is the union of the handlers'
 * requirements. Each call emits `tool-start` (sensitive arguments redacted), the handler's
 * `tool-progress` events in order, then `tool-complete`; otherwise the stream fails with a
 * `ToolError`:
 * - `InvalidArguments` when the model sent invalid JSON (`argumentsError`) or arguments that do
 *   not match the schema; the message names each field and what was wrong;
 * - `Timeout` when the handler runs past its time limit (the tool's `timeout`, else the
 *   provider's, default 60 seconds; `Duration.infinity` disables it); the handler is interrupted;
 * - the handler's own `ToolError`, kept as is; any other failure becomes `ExecutionFailed`;
 * - a defect (a thrown exception) is a bug, but one buggy tool must not bring the agent down:
 *   it is logged at error level with its cause and reported as `ExecutionFailed`
 *   (`Tool "x" crashed: ...`).
 * Duplicate tool names are a programming error and throw when the provider is built.
 *
 * @example
 * ```ts
 * const provider = localTools([greet, search]) // ToolProvider<SearchIndex>
 * const toolbox = Toolbox.layer([provider]).pipe(Layer.provide(SearchIndex.layer))
 * ```
 * @since 0.1.0
 */
export const localTools = <const Tools extends ReadonlyArray<LocalTool<any>>>(
  tools: Tools,
  options?: { readonly name?: string; readonly timeout?: Duration.DurationInput }
): ToolProvider<Requirements<Tools[number]>> => {
  type R = Requirements<Tools[number]>
  const providerName = options?.name ?? "local"
  const defaultTimeout = Duration.decode(options?.timeout ?? "60 seconds")
  const byName = new Map<string, LocalTool<R>>()
  for (const localTool of tools) {
    if (byName.has(localTool.name)) {
      throw new Error(
        `localTools("${providerName}"): two tools are named "${localTool.name}"; tool names must be unique within a provider.`
      )
    }
    byName.set(localTool.name, localTool)
  }
  const definitions: ReadonlyArray<ToolDefinition> = tools.map((localTool) => localTool.definition)
  const allTools = Effect.succeed(definitions)

  const execute = (call: ToolCall, context: ExecutionContext): Stream.Stream<ToolEvent, ToolError, R> => {
    const localTool = byName.get(call.name)
    if (localTool === undefined) {
      return Stream.fail(toolError(call, "NotFound", `Tool "${call.name}" is not offered by provider "${providerName}".`))
    }
    const timeout = localTool.timeout ?? defaultTimeout
    return Stream.unwrapScoped(
      Effect.flatMap(Mailbox.make<ToolEvent, ToolError>(), (mailbox) => {
        const worker = Effect.forkScoped(Mailbox.into(runCall(localTool, call, context, mailbox), mailbox))
        // A timer beside the worker is cheaper than racing the handler (`Effect.timeout` forks twice); when it
        // fails the mailbox the stream ends, and closing the stream's scope interrupts the handler.
        const timer = Duration.isFinite(timeout)
          ? Effect.forkScoped(Effect.zipRight(Effect.sleep(timeout), mailbox.fail(timedOut(call, timeout))))
          : Effect.void
        return Effect.as(Effect.zipRight(worker, timer), Mailbox.toStream(mailbox))
      })
    )
  }

  return {
    name: providerName,
    getTools: allTools,
    getTool: (name) => Effect.succeed(Option.fromNullable(byName.get(name)?.definition)),
    execute
  }
}

const runCall = <R>(
  localTool: LocalTool<R>,
  call: ToolCall,
  context: ExecutionContext,
  mailbox: Mailbox.Mailbox<ToolEvent, ToolError>
): Effect.Effect<void, ToolError, R> => {
  const secrets = localTool.sensitive.length === 0 ? noSecrets : secretsOf(localTool.sensitive, call.arguments)
  const shownArguments = localTool.sensitive.length === 0 ? call.arguments : redact(localTool.sensitive, call.arguments)
  const emit = (event: Effect.Effect<ToolEvent>) => Effect.flatMap(event, (e) => mailbox.offer(e))
  const progress = (report: Progress): Effect.Effect<void> =>
    Effect.asVoid(
      emit(toolProgressEvent(
        context,
        call,
        report.message !== undefined && secrets.length > 0 ? { ...report, message: scrub(report.message, secrets) } : report
      ))
    )
  const handled = localTool.invoke(call.arguments, { context, call, progress }).pipe(
    Effect.catchAllCause((cause) => toToolError(localTool.name, call, cause, secrets)),
    // Capturing a stack trace per span is costly on this hot path; the attributes identify the call.
    Effect.withSpan("LocalTools.call", {
      captureStackTrace: false,
      attributes: { "tool.name": call.name, "tool.call_id": call.id, "agent.context_id": context.contextId }
    })
  )
  return emit(toolStartEvent(context, call, shownArguments)).pipe(
    Effect.zipRight(
      call.argumentsError === undefined
        ? handled
        : Effect.fail(
          toolError(
            call,
            "InvalidArguments",
            // The parser's message quotes the raw text, which may hold a sensitive value.
            localTool.sensitive.length > 0
              ? `Tool arguments for "${call.name}" are not valid JSON; send one JSON object matching the tool's parameters.`
              : call.argumentsError
          )
        )
    ),
    Effect.flatMap((result) => emit(toolCompleteEvent(context, call, result === undefined ? null : result))),
    Effect.asVoid
  )
}

const toToolError = (
  toolName: string,
  call: ToolCall,
  cause: Cause.Cause<unknown>,
  secrets: ReadonlyArray<string>
): Effect.Effect<never, ToolError> => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (error instanceof InvalidArgumentsFailure) {
      return Effect.fail(toolError(
        call,
        "InvalidArguments",
        scrub(error.message, secrets),
        secrets.length === 0 ? error.issues : error.issues.map((i) => ({ ...i, message: scrub(i.message, secrets) }))
      ))
    }
    if (error instanceof ToolError) {
      return Effect.fail(secrets.length === 0 ? error : new ToolError({ ...error, message: scrub(error.message, secrets) }))
    }
    return Effect.fail(toolError(call, "ExecutionFailed", scrub(`Tool "${toolName}" failed: ${describe(error)}`, secrets)))
  }
  if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
  const defect = Option.getOrUndefined(Cause.dieOption(cause))
  return Effect.zipRight(
    Effect.logError(`Tool "${toolName}" crashed`, scrub(Cause.pretty(cause), secrets)).pipe(
      Effect.annotateLogs({ toolName, toolCallId: call.id })
    ),
    Effect.fail(toolError(call, "ExecutionFailed", scrub(`Tool "${toolName}" crashed: ${describe(defect)}`, secrets)))
  )
}

/** A short, readable account of an unknown failure value. */
const describe = (error: unknown): string => {
  if (typeof error === "string") return error
  if (typeof error === "object" && error !== null) {
    const tag = "_tag" in error && typeof error._tag === "string" ? error._tag : undefined
    const message = "message" in error && typeof error.message === "string" && error.message !== ""
      ? error.message
      : undefined
    if (message !== undefined) return tag !== undefined && !message.startsWith(tag) ? `${tag}: ${message}` : message
    if (tag !== undefined) return tag
  }
  try {
    return JSON.stringify(error)?.slice(0, 500) ?? String(error)
  } catch {
    return String(error)
  }
}

const timedOut = (call: ToolCall, timeout: Duration.Duration): ToolError =>
  toolError(call, "Timeout", `Tool "${call.name}" did not finish within ${Duration.format(timeout)} and was stopped.`)

const noSecrets: ReadonlyArray<string> = []

const redact = (sensitive: ReadonlyArray<string>, args: Record<string, unknown>): Record<string, unknown> => {
  const out: Record<string, unknown> = { ...args }
  for (const key of sensitive) if (key in out) out[key] = REDACTED
  return out
}

/** The text forms a sensitive value could take in a message, longest first. */
const secretsOf = (sensitive: ReadonlyArray<string>, args: Record<string, unknown>): ReadonlyArray<string> => {
  const found: Array<string> = []
  const collect = (value: unknown): void => {
    if (typeof value === "string") {
      if (value !== "") found.push(value)
    } else if (typeof value === "number" || typeof value === "bigint") {
      // Very short numbers would blank out unrelated digits in messages; they are not secrets anyway.
      const text = String(value)
      if (text.length >= 4) found.push(text)
    } else if (typeof value === "object" && value !== null) {
      for (const inner of Object.values(value)) collect(inner)
    }
  }
  for (const key of sensitive) collect(args[key])
  return found.sort((a, b) => b.length - a.length)
}

const scrub = (text: string, secrets: ReadonlyArray<string>): string => {
  let out = text
  for (const secret of secrets) out = out.replaceAll(secret, REDACTED)
  return out
}
