/**
 * Who and what a tool execution belongs to (seed 001): the conversation (`contextId`), the
 * task within it (`taskId`), the agent, and optionally the caller's identity.
 *
 * @since 0.1.0
 */
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

/**
 * The caller's identity. The access token is `Redacted` from the moment it is read: it prints
 * as `<redacted>` through `String()`, `JSON.stringify`, `util.inspect` and Effect's logger, and
 * the schema keeps it `Redacted` when encoding, so it never reaches a wire format by accident.
 *
 * @since 0.1.0
 */
export const AuthContext = Schema.Struct({
  userId: Schema.optional(Schema.String),
  credentials: Schema.optional(Schema.Struct({ accessToken: Schema.RedactedFromSelf(Schema.String) })),
  scopes: Schema.optional(Schema.Array(Schema.String))
})
export type AuthContext = typeof AuthContext.Type

/** @since 0.1.0 */
export const ExecutionContext = Schema.Struct({
  contextId: Schema.String,
  taskId: Schema.String,
  agentId: Schema.String,
  authContext: Schema.optional(AuthContext)
})
export type ExecutionContext = typeof ExecutionContext.Type

/**
 * Builds an `ExecutionContext`; a plain string token is wrapped in `Redacted`.
 *
 * @example
 * ```ts
 * const ctx = ExecutionContext.make({ contextId: "c1", taskId: "t1", agentId: "a", accessToken: "tok" })
 * ```
 * @since 0.1.0
 */
export const make = (options: {
  readonly contextId: string
  readonly taskId: string
  readonly agentId: string
  readonly userId?: string
  readonly accessToken?: string | Redacted.Redacted<string>
  readonly scopes?: ReadonlyArray<string>
}): ExecutionContext => {
  const { accessToken, agentId, contextId, scopes, taskId, userId } = options
  if (accessToken === undefined && userId === undefined && scopes === undefined) {
    return { contextId, taskId, agentId }
  }
  return {
    contextId,
    taskId,
    agentId,
    authContext: {
      ...(userId !== undefined ? { userId } : {}),
      ...(scopes !== undefined ? { scopes } : {}),
      ...(accessToken !== undefined
        ? { credentials: { accessToken: Redacted.isRedacted(accessToken) ? accessToken : Redacted.make(accessToken) } }
        : {})
    }
  }
}
