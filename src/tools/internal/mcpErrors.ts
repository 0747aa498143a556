/**
 * How failures of the MCP SDK are classified. The SDK throws plain `Error` subclasses from three
 * layers (HTTP transports, the JSON-RPC protocol, the child process); the provider needs to know
 * only what to do next: re-initialize an expired session, drop a dead connection, or report.
 *
 * @internal
 */
import { SseError } from "@modelcontextprotocol/sdk/client/sse.js"
import { StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js"
import * as Data from "effect/Data"
import type { ToolError } from "../../domain/Errors.js"
import * as Redaction from "../../domain/Redaction.js"

/**
 * What went wrong, in the provider's terms. `SessionExpired` never leaves the provider: it is
 * answered by re-initializing once. `Transport` means the connection is unusable and must be
 * dropped so the next call reconnects.
 */
export type FailureKind =
  | "SessionExpired"
  | "Transport"
  | "Timeout"
  | "Unauthorized"
  | "InvalidArguments"
  | "NotFound"
  | "ExecutionFailed"

/** @internal */
export class McpFailure extends Data.TaggedError("McpFailure")<{
  readonly kind: FailureKind
  readonly message: string
  readonly details?: unknown
}> {}

/** Whether a failure leaves the connection unusable. */
export const dropsConnection = (failure: McpFailure): boolean =>
  failure.kind === "Transport" || failure.kind === "SessionExpired"

/** The `ToolError` reason a failure is reported with. */
export const toolErrorReason = (kind: FailureKind): ToolError["reason"] =>
  kind === "SessionExpired" ? "Transport" : kind

/**
 * Removes every credential from a message. Servers and fetch errors sometimes echo what they
 * were sent; a token must not reach an error, an event or a log through them.
 */
export const scrub = (message: string, secrets: ReadonlyArray<string>): string => Redaction.scrub(message, secrets)

/** The strings `scrub` removes for a set of headers (or a stdio server's environment). */
export const secretsOf = (headers: Readonly<Record<string, string>>): ReadonlyArray<string> =>
  Redaction.secretsOfHeaders(headers)

const describe = (error: unknown): string => {
  if (error instanceof Error) {
    const cause = (error as { readonly cause?: unknown }).cause
    const code = typeof cause === "object" && cause !== null && "code" in cause ? String(cause.code) : undefined
    return code !== undefined ? `${error.message} (${code})` : error.message
  }
  return String(error)
}

/**
 * Classifies anything the SDK threw. HTTP 404 on a request that carried a session id is the
 * spec's "session expired"; a closed connection or a network failure is `Transport`; JSON-RPC
 * errors keep their meaning.
 */
export const classify = (error: unknown, secrets: ReadonlyArray<string>): McpFailure => {
  const message = scrub(describe(error), secrets)
  if (error instanceof McpFailure) return error
  if (error instanceof StreamableHTTPError) {
    if (error.code === 404) return new McpFailure({ kind: "SessionExpired", message })
    if (error.code === 401 || error.code === 403) return new McpFailure({ kind: "Unauthorized", message })
    return new McpFailure({ kind: "Transport", message })
  }
  if (error instanceof SseError) {
    const kind = error.code === 401 || error.code === 403 ? "Unauthorized" : "Transport"
    return new McpFailure({ kind, message })
  }
  if (error instanceof McpError) {
    switch (error.code) {
      case ErrorCode.ConnectionClosed:
        return new McpFailure({ kind: "Transport", message })
      case ErrorCode.RequestTimeout:
        return new McpFailure({ kind: "Timeout", message })
      case ErrorCode.InvalidParams:
        return new McpFailure({ kind: "InvalidArguments", message })
      case ErrorCode.MethodNotFound:
        return new McpFailure({ kind: "NotFound", message })
      default:
        return new McpFailure({ kind: "ExecutionFailed", message })
    }
  }
  if (error instanceof Error && error.name === "UnauthorizedError") {
    return new McpFailure({ kind: "Unauthorized", message })
  }
  return new McpFailure({ kind: "Transport", message })
}

/** Whether a failure to initialize over Streamable HTTP means "this server only speaks legacy SSE". */
export const suggestsLegacySse = (error: unknown): boolean =>
  error instanceof StreamableHTTPError &&
  error.code !== undefined &&
  error.code >= 400 &&
  error.code < 500 &&
  error.code !== 401 &&
  error.code !== 403
