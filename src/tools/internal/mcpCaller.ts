/**
 * Who calls an MCP server: the identity a caller's connection is kept under, from the headers
 * `getHeaders` builds for its auth context. `getHeaders` is the caller's code: what it returns
 * may be plain headers, a Promise or an Effect, and what it throws or fails with may quote a
 * credential, so only the kind of a failure is reported.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type { AuthContext } from "../../domain/ExecutionContext.js"
import type { GetHeaders, Headers } from "../McpTools.js"
import { McpFailure } from "./mcpErrors.js"
import { anonymous, identities, type Identity } from "./mcpIdentity.js"

/** How one provider tells its callers apart. */
export interface Caller {
  readonly getHeaders: GetHeaders | undefined
  /** `identify`, remembering each user's last headers. */
  readonly identify: (userId: string | undefined, headers: Headers) => Identity
}

export const makeCaller = (getHeaders: GetHeaders | undefined): Caller => ({ getHeaders, identify: identities() })

/** The caller's identity, asking `getHeaders` (and waiting for it) as needed. */
export const identityOf = (caller: Caller, authContext: AuthContext | undefined): Effect.Effect<Identity, McpFailure> =>
  Effect.suspend(() => {
    const found = resolveIdentity(caller, authContext)
    return Effect.isEffect(found) ? found : Effect.succeed(found)
  })

/**
 * The caller's identity now, when `getHeaders` answers with plain headers (or there is none);
 * otherwise the effect that waits for what it returned.
 */
export const resolveIdentity = (
  caller: Caller,
  authContext: AuthContext | undefined
): Identity | Effect.Effect<Identity, McpFailure> => {
  const { getHeaders } = caller
  if (getHeaders === undefined) return anonymous
  let out: unknown
  try {
    out = getHeaders(authContext)
  } catch (error) {
    return Effect.fail(getHeadersFailed(error))
  }
  if (isHeaders(out)) return caller.identify(authContext?.userId, out)
  return Effect.map(headersFrom(out), (headers) => caller.identify(authContext?.userId, headers))
}

/** What `getHeaders` returned, as headers: it may be plain, a Promise or an Effect. */
const headersFrom = (out: unknown): Effect.Effect<Headers, McpFailure> => {
  const resolved: Effect.Effect<unknown, unknown> = Effect.isEffect(out)
    ? out as Effect.Effect<unknown, unknown>
    : typeof out === "object" && out !== null && typeof (out as PromiseLike<Headers>).then === "function"
    ? Effect.tryPromise({ try: () => Promise.resolve(out), catch: (error) => error })
    : Effect.succeed(out)
  return resolved.pipe(
    Effect.mapError(getHeadersFailed),
    Effect.filterOrFail(isHeaders, () => notHeaders)
  )
}

const getHeadersFailed = (error: unknown) =>
  new McpFailure({ kind: "Unauthorized", message: `getHeaders failed${error instanceof Error ? ` (${error.name})` : ""}` })

const notHeaders = new McpFailure({ kind: "Unauthorized", message: "getHeaders must return a record of header strings" })

const isHeaders = (headers: unknown): headers is Headers =>
  typeof headers === "object" && headers !== null && !Effect.isEffect(headers) &&
  typeof (headers as PromiseLike<unknown>).then !== "function" &&
  Object.values(headers).every((v) => typeof v === "string")
