/**
 * Tools implemented in the agent's own process (seed 001's `tool()` and `localTools`). A tool
 * is data (name, description, an Effect Schema for its parameters) plus a handler returning an
 * `Effect`; the handler's requirements show in the provider's type and are provided by a Layer,
 * so tests can run the same tool against other services.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type { ToolError } from "../domain/Errors.js"
import type { ToolEvent } from "../domain/Events.js"
import type { ExecutionContext } from "../domain/ExecutionContext.js"
import type { ToolCall, ToolDefinition } from "../domain/Message.js"
import * as Redaction from "../domain/Redaction.js"
import { invalidArguments, parametersJsonSchema } from "./internal/localArguments.js"
import { LocalRun, notOffered, type Setup } from "./internal/localRun.js"
import type { RunOptions, Runner, ToolProvider } from "./ToolProvider.js"
import { readsToStream } from "./ToolProvider.js"

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
export const REDACTED = Redaction.REDACTED

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
    definition: {
      name,
      description,
      parameters: parametersJsonSchema(name, parameters),
      ...(options.sensitive !== undefined && options.sensitive.length > 0 ? { sensitive: options.sensitive } : {})
    },
    sensitive: options.sensitive ?? [],
    timeout: options.timeout !== undefined ? Duration.decode(options.timeout) : undefined,
    invoke: (args, context) =>
      Effect.flatMap(
        Effect.mapError(decode(args), (error) => invalidArguments(context.call, error)),
        (decoded) => handler(decoded, context)
      )
  }
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
 * `executeBatch` runs many calls, up to 8 at once, through one stream; there a failure is the
 * call's terminal `tool-error` event, so one failing call does not end the others.
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
  const setup: Setup = { providerName, defaultTimeout, byName }

  const runner: Runner = (calls, context, runOptions) => new LocalRun(setup, calls, context, runOptions)
  const stream = (calls: ReadonlyArray<ToolCall>, context: ExecutionContext, runOptions: RunOptions) =>
    readsToStream(() => runner(calls, context, runOptions)) as Stream.Stream<ToolEvent, ToolError, R>

  const execute = (call: ToolCall, context: ExecutionContext): Stream.Stream<ToolEvent, ToolError, R> =>
    byName.has(call.name)
      ? stream([call], context, providerContract)
      : Stream.fail(notOffered(providerName, call))

  return {
    name: providerName,
    getTools: allTools,
    getTool: (name) => Effect.succeed(Option.fromNullable(byName.get(name)?.definition)),
    execute,
    executeBatch: (calls, context) => stream(calls, context, batchDefaults),
    runner: { run: runner, batches: true, execute }
  } satisfies ToolProvider<R>
}

const providerContract: RunOptions = { settle: false, concurrency: 1 }
const batchDefaults: RunOptions = { settle: true, concurrency: 8 }
