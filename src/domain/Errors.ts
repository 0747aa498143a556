/**
 * The kernel's typed errors. Each is a `Schema.TaggedError` with a `reason` a caller can switch
 * on and a `message` that says what was wrong and what to do. None of them ever holds a secret:
 * headers and bodies that reach an error are redacted first.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import { RouteAttempt } from "./Message.js"

/** @since 0.1.0 */
export const ProviderErrorReason = Schema.Literal(
  "RateLimited",
  "Unauthorized",
  "NotFound",
  "InvalidRequest",
  "ContextTooLong",
  "ContentFiltered",
  "ServerError",
  "Timeout",
  "Network",
  "InvalidResponse",
  "Truncated"
)
export type ProviderErrorReason = typeof ProviderErrorReason.Type

/**
 * A model provider failed. `retryable` tells the retry policy and the router whether trying
 * again (or elsewhere) can help; `retryAfterMs` carries a server's `Retry-After`.
 *
 * @since 0.1.0
 */
export class ProviderError extends Schema.TaggedError<ProviderError>("effect-agent-kernel/ProviderError")(
  "ProviderError",
  {
    reason: ProviderErrorReason,
    providerId: Schema.String,
    message: Schema.String,
    retryable: Schema.Boolean,
    status: Schema.optional(Schema.Number),
    retryAfterMs: Schema.optional(Schema.Number),
    metadata: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String }))
  }
) {}

/** @since 0.1.0 */
export const ToolErrorReason = Schema.Literal(
  "NotFound",
  "InvalidArguments",
  "ExecutionFailed",
  "Timeout",
  "Unauthorized",
  "Transport",
  "InputRejected"
)
export type ToolErrorReason = typeof ToolErrorReason.Type

/**
 * A tool call failed. It travels in a tool stream's error channel; `Toolbox` turns it into a
 * terminal `tool-error` event. `details` is optional JSON data (for example a tool server's
 * structured error).
 *
 * @since 0.1.0
 */
export class ToolError extends Schema.TaggedError<ToolError>("effect-agent-kernel/ToolError")("ToolError", {
  reason: ToolErrorReason,
  toolName: Schema.String,
  toolCallId: Schema.String,
  message: Schema.String,
  details: Schema.optional(Schema.Unknown)
}) {}

/** @since 0.1.0 */
export const SecretsErrorReason = Schema.Literal("WrongKey", "Corrupt", "Io", "ReadOnly", "InvalidKey")
export type SecretsErrorReason = typeof SecretsErrorReason.Type

/** The secrets store could not do what was asked; `path` names the file involved. @since 0.1.0 */
export class SecretsError extends Schema.TaggedError<SecretsError>("effect-agent-kernel/SecretsError")("SecretsError", {
  reason: SecretsErrorReason,
  message: Schema.String,
  path: Schema.optional(Schema.String),
  key: Schema.optional(Schema.String)
}) {}

/** @since 0.1.0 */
export const ConfigErrorReason = Schema.Literal("InvalidValue", "Corrupt", "Io")
export type ConfigErrorReason = typeof ConfigErrorReason.Type

/** A configuration value or file was wrong: which key or file, and what was wrong. @since 0.1.0 */
export class ConfigError extends Schema.TaggedError<ConfigError>("effect-agent-kernel/ConfigError")("ConfigError", {
  reason: ConfigErrorReason,
  message: Schema.String,
  key: Schema.optional(Schema.String),
  path: Schema.optional(Schema.String)
}) {}

/**
 * The router found no provider that could serve a request: `attempts` lists each provider tried
 * (or skipped) and why.
 *
 * @since 0.1.0
 */
export class RoutingError extends Schema.TaggedError<RoutingError>("effect-agent-kernel/RoutingError")("RoutingError", {
  reason: Schema.Literal("NoProviderAvailable"),
  message: Schema.String,
  tier: Schema.optional(Schema.String),
  attempts: Schema.Array(RouteAttempt)
}) {}

/** @since 0.1.0 */
export const PluginErrorReason = Schema.Literal("NotFound", "Invalid", "LoadFailed", "NotConfigured")
export type PluginErrorReason = typeof PluginErrorReason.Type

/** A provider plugin could not be loaded or could not create its provider. @since 0.1.0 */
export class PluginError extends Schema.TaggedError<PluginError>("effect-agent-kernel/PluginError")("PluginError", {
  reason: PluginErrorReason,
  pluginId: Schema.String,
  message: Schema.String
}) {}

/** @since 0.1.0 */
export const StorageErrorReason = Schema.Literal(
  "Unreachable",
  "Unauthorized",
  "Locked",
  "Corrupt",
  "TooNew",
  "DiskFull",
  "Failed"
)
export type StorageErrorReason = typeof StorageErrorReason.Type

/**
 * The database behind the kernel's storage could not do what was asked. `database` names it
 * (a SQLite file, or a PostgreSQL URL with any password removed); `message` says what was wrong
 * and what to do. `Unreachable` (no server answers), `Unauthorized` (wrong user or password),
 * `Locked` (another program holds the database), `Corrupt` (not a database, or damaged),
 * `TooNew` (written by a newer version of the kernel: left untouched), `DiskFull`, `Failed`.
 *
 * @since 0.1.0
 */
export class StorageError extends Schema.TaggedError<StorageError>("effect-agent-kernel/StorageError")("StorageError", {
  reason: StorageErrorReason,
  database: Schema.String,
  message: Schema.String
}) {}

/** @since 0.1.0 */
export const AgentErrorReason = Schema.Literal(
  "ModelFailed",
  "NoProvider",
  "RepeatedToolFailure",
  "ToolsUnavailable",
  "InvalidInput",
  "ConversationStore",
  "NotWaiting"
)
export type AgentErrorReason = typeof AgentErrorReason.Type

/**
 * An agent run could not finish. `cause` is the underlying typed error, when there is one.
 *
 * @since 0.1.0
 */
export class AgentError extends Schema.TaggedError<AgentError>("effect-agent-kernel/AgentError")("AgentError", {
  reason: AgentErrorReason,
  message: Schema.String,
  contextId: Schema.optional(Schema.String),
  taskId: Schema.optional(Schema.String),
  cause: Schema.optional(
    Schema.Union(ProviderError, RoutingError, ToolError, ConfigError, SecretsError, PluginError, StorageError)
  )
}) {}

/** Every kernel error, as one Schema (for crossing a wire). @since 0.1.0 */
export const KernelError = Schema.Union(
  ProviderError,
  ToolError,
  SecretsError,
  ConfigError,
  RoutingError,
  PluginError,
  StorageError,
  AgentError
)
export type KernelError = typeof KernelError.Type
