/**
 * effect-agent-kernel: a functional agent kernel on Effect.
 *
 * @since 0.1.0
 */
export * as Errors from "./domain/Errors.js"
export * as Events from "./domain/Events.js"
export * as ExecutionContext from "./domain/ExecutionContext.js"
export * as Message from "./domain/Message.js"
export * as ConfigManager from "./config/ConfigManager.js"
export * as SecretsManager from "./secrets/SecretsManager.js"
export * as LanguageModel from "./providers/LanguageModel.js"
export * as ToolProvider from "./tools/ToolProvider.js"
