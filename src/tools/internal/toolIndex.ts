/**
 * The toolbox's index: which provider offers each tool name. Built from every provider's
 * listing, where one name offered twice is an error; rebuilt whenever the tools are listed
 * again, a provider whose listing then fails keeping its last known tools.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { ToolError } from "../../domain/Errors.js"
import type { ToolCall, ToolDefinition } from "../../domain/Message.js"
import { runnerOf, type ToolProvider } from "../ToolProvider.js"
import { toolError } from "./callEvents.js"

export interface Index {
  readonly owner: ReadonlyMap<string, ToolProvider<any>>
  readonly definitions: ReadonlyArray<ToolDefinition>
  /** Each provider's last successful listing, kept when a later listing fails. */
  readonly listings: ReadonlyArray<ReadonlyArray<ToolDefinition>>
}

/** The first index: every provider must list its tools. */
export const initial = <R>(providers: ReadonlyArray<ToolProvider<R>>): Effect.Effect<Index, ToolError, R> =>
  Effect.forEach(
    providers,
    (provider) => Effect.mapError(provider.getTools, (error) => listingFailed(provider, error)),
    { concurrency: "unbounded" }
  ).pipe(Effect.flatMap((listings) => build(providers, listings)))

/** The index after listing every provider again; one that fails keeps its tools in the `current` index. */
export const relist = <R>(
  providers: ReadonlyArray<ToolProvider<R>>,
  current: () => Index
): Effect.Effect<Index, ToolError, R> =>
  Effect.forEach(providers, (provider) => Effect.either(provider.getTools), { concurrency: "unbounded" }).pipe(
    Effect.flatMap((results) =>
      Effect.forEach(results, (result, i) =>
        Either.match(result, {
          onRight: Effect.succeed,
          onLeft: (error) =>
            Effect.as(
              Effect.logWarning(
                `Tool provider "${providers[i]!.name}" could not list its tools; keeping its last known list`,
                error.message
              ),
              current().listings[i]!
            )
        }))
    ),
    Effect.flatMap((listings) => build(providers, listings))
  )

const listingFailed = (provider: ToolProvider<any>, error: ToolError): ToolError =>
  new ToolError({ ...error, message: `Tool provider "${provider.name}" could not list its tools: ${error.message}` })

const build = (
  providers: ReadonlyArray<ToolProvider<any>>,
  listings: ReadonlyArray<ReadonlyArray<ToolDefinition>>
): Effect.Effect<Index, ToolError> => {
  const owner = new Map<string, ToolProvider<any>>()
  const definitions: Array<ToolDefinition> = []
  for (let i = 0; i < providers.length; i++) {
    const provider = providers[i]!
    for (const definition of listings[i]!) {
      const first = owner.get(definition.name)
      if (first !== undefined) {
        return Effect.fail(
          new ToolError({
            reason: "ExecutionFailed",
            toolName: definition.name,
            toolCallId: "",
            message: first === provider
              ? `Tool provider "${provider.name}" offers the tool "${definition.name}" twice; tool names must be unique.`
              : `The tool "${definition.name}" is offered by two providers, "${first.name}" and "${provider.name}"; ` +
                `remove one, rename it, or prefix one provider's tool names.`
          })
        )
      }
      owner.set(definition.name, provider)
      definitions.push(definition)
    }
  }
  return Effect.succeed({ owner, definitions, listings })
}

const namesShown = 10

/** `NotFound` for a name no provider offers, listing some that exist so the model can correct itself. */
export const notFound = (call: ToolCall, index: Index): ToolError => {
  const names = index.definitions.map((definition) => definition.name)
  const shown = names.slice(0, namesShown).join(", ")
  const more = names.length > namesShown ? ` (and ${names.length - namesShown} more)` : ""
  return toolError(
    call,
    "NotFound",
    names.length === 0
      ? `Unknown tool "${call.name}": no tools are available.`
      : `Unknown tool "${call.name}". Available tools: ${shown}${more}. Call one of these by its exact name.`
  )
}

/** A unit of a batch's work: one call, or all calls for a provider with its own batching. */
export interface Unit {
  readonly provider: ToolProvider<any> | undefined
  readonly calls: Array<ToolCall>
}

/** Groups a batch into units of work. */
export const plan = (calls: ReadonlyArray<ToolCall>, index: Index): ReadonlyArray<Unit> => {
  const units: Array<Unit> = []
  const grouped = new Map<ToolProvider<any>, Array<ToolCall>>()
  for (const call of calls) {
    const provider = index.owner.get(call.name)
    // A provider that batches through its runner runs each call of a mixed batch in its own
    // slot, as `execute` does, so the batch's concurrency still counts every call.
    if (provider?.executeBatch === undefined || (provider !== undefined && runnerOf(provider)?.batches === true)) {
      units.push({ provider, calls: [call] })
      continue
    }
    const group = grouped.get(provider)
    if (group !== undefined) {
      group.push(call)
    } else {
      const created = [call]
      grouped.set(provider, created)
      units.push({ provider, calls: created })
    }
  }
  return units
}
