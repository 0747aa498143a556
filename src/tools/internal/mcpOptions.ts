/**
 * Checks `McpToolProvider` options once, at construction, so a misconfigured server is a
 * `ConfigError` naming the option instead of a failure on the first tool call.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { ConfigError } from "../../domain/Errors.js"
import type { GetHeaders, McpToolProviderOptions } from "../McpTools.js"
import type { Endpoint } from "./mcpConnection.js"

/** Options with defaults applied. */
export interface CheckedOptions {
  readonly serverId: string
  readonly endpoint: Endpoint
  readonly getHeaders: GetHeaders | undefined
  readonly timeout: Duration.Duration
  readonly idleTimeToLive: Duration.Duration
  readonly prefix: boolean
  readonly clientInfo: { readonly name: string; readonly version: string }
}

const invalid = (key: string, message: string) =>
  new ConfigError({ reason: "InvalidValue", key: `mcp.${key}`, message })

const positiveDuration = (key: string, input: Duration.DurationInput | undefined, fallback: Duration.Duration) => {
  if (input === undefined) return Effect.succeed(fallback)
  const decoded = Duration.decodeUnknown(input)
  if (decoded._tag === "None" || !Duration.isFinite(decoded.value) || Duration.toMillis(decoded.value) <= 0) {
    return Effect.fail(invalid(key, `${key} must be a positive, finite duration`))
  }
  return Effect.succeed(decoded.value)
}

const isStringRecord = (value: unknown): value is Record<string, string> =>
  typeof value === "object" && value !== null && Object.values(value).every((v) => typeof v === "string")

/** Validates options; every failure names the offending option. */
export const checkOptions = (options: McpToolProviderOptions): Effect.Effect<CheckedOptions, ConfigError> =>
  Effect.gen(function*() {
    // Read loosely: JavaScript callers (and config files) do not go through the type checker.
    const loose = options as McpToolProviderOptions & Record<string, unknown>
    const serverId = loose.serverId
    if (typeof serverId !== "string" || serverId.trim() === "") {
      return yield* invalid("serverId", "serverId must be a non-empty string")
    }
    const hasUrl = loose.serverUrl !== undefined
    const hasCommand = loose.command !== undefined
    if (hasUrl === hasCommand) {
      return yield* invalid(
        hasUrl ? "command" : "serverUrl",
        `MCP server '${serverId}' needs exactly one of serverUrl (HTTP) or command (stdio)`
      )
    }
    const timeout = yield* positiveDuration("timeout", options.timeout, Duration.seconds(60))
    const idleTimeToLive = yield* positiveDuration("idleTimeToLive", options.idleTimeToLive, Duration.minutes(5))
    const clientInfo = options.clientInfo ?? { name: "effect-agent-kernel", version: "0.1.0" }
    const common = { serverId, timeout, idleTimeToLive, prefix: options.prefix === true, clientInfo }

    if (hasCommand) {
      const { args = [], command, cwd, env = {}, stderr = "inherit" } = loose as typeof loose & {
        readonly command: unknown
        readonly args?: unknown
        readonly env?: unknown
        readonly cwd?: unknown
        readonly stderr?: unknown
      }
      if (typeof command !== "string" || command === "") {
        return yield* invalid("command", `MCP server '${serverId}': command must be a non-empty string`)
      }
      if (!Array.isArray(args) || !args.every((arg) => typeof arg === "string")) {
        return yield* invalid("args", `MCP server '${serverId}': args must be an array of strings`)
      }
      if (!isStringRecord(env)) {
        return yield* invalid("env", `MCP server '${serverId}': env must map names to strings`)
      }
      if (cwd !== undefined && typeof cwd !== "string") {
        return yield* invalid("cwd", `MCP server '${serverId}': cwd must be a path`)
      }
      if (stderr !== "inherit" && stderr !== "ignore") {
        return yield* invalid("stderr", `MCP server '${serverId}': stderr must be "inherit" or "ignore"`)
      }
      if (loose.getHeaders !== undefined || loose.getAuthHeaders !== undefined) {
        return yield* invalid(
          "getHeaders",
          `MCP server '${serverId}' runs over stdio, where there are no request headers; pass credentials in env`
        )
      }
      return {
        ...common,
        getHeaders: undefined,
        endpoint: { _tag: "Stdio", command, args, env, cwd, stderr }
      } satisfies CheckedOptions
    }

    const rawUrl = loose.serverUrl
    let url: URL
    try {
      url = rawUrl instanceof URL ? new URL(rawUrl.href) : new URL(String(rawUrl))
    } catch {
      return yield* invalid("serverUrl", `MCP server '${serverId}': serverUrl is not a URL`)
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      return yield* invalid("serverUrl", `MCP server '${serverId}': serverUrl must be http(s), not ${url.protocol}`)
    }
    const { getAuthHeaders, getHeaders } = loose as { getHeaders?: unknown; getAuthHeaders?: unknown }
    if (getHeaders !== undefined && getAuthHeaders !== undefined && getHeaders !== getAuthHeaders) {
      return yield* invalid("getHeaders", `MCP server '${serverId}': give getHeaders or getAuthHeaders, not both`)
    }
    const headers = getHeaders ?? getAuthHeaders
    if (headers !== undefined && typeof headers !== "function") {
      return yield* invalid("getHeaders", `MCP server '${serverId}': getHeaders must be a function`)
    }
    return {
      ...common,
      getHeaders: headers as GetHeaders | undefined,
      endpoint: { _tag: "Http", url }
    } satisfies CheckedOptions
  })
