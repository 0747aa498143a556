/**
 * effect-agent-kernel: a functional agent kernel on Effect. Every moving part is a service
 * provided by a Layer: model providers, the tier router, tool providers, secrets and config.
 *
 * @since 0.1.0
 */
export * as Errors from "./domain/Errors.js"
export * as Events from "./domain/Events.js"
export * as ExecutionContext from "./domain/ExecutionContext.js"
export * as Message from "./domain/Message.js"

export * as ConfigManager from "./config/ConfigManager.js"
export * as KernelConfig from "./config/KernelConfig.js"
export * as SecretsManager from "./secrets/SecretsManager.js"

export * as Bedrock from "./providers/Bedrock.js"
export * as LanguageModel from "./providers/LanguageModel.js"
export * as OpenAiCompatible from "./providers/OpenAiCompatible.js"
export * as RateLimiter from "./providers/RateLimiter.js"
export * as Resilience from "./providers/Resilience.js"
export * as TestModel from "./providers/TestModel.js"

export * as BuiltinPlugins from "./plugins/builtin.js"
export * as ProviderPlugin from "./plugins/ProviderPlugin.js"

export * as QueryClassifier from "./router/QueryClassifier.js"
export * as TierRouter from "./router/TierRouter.js"

export * as AgentTools from "./tools/AgentTools.js"
export * as ClientTools from "./tools/ClientTools.js"
export * as LocalTools from "./tools/LocalTools.js"
export * as McpTools from "./tools/McpTools.js"
export * as Toolbox from "./tools/Toolbox.js"
export * as ToolProvider from "./tools/ToolProvider.js"

export * as Agent from "./agent/Agent.js"
export * as AgentServer from "./agent/AgentServer.js"
export * as ConversationStore from "./agent/ConversationStore.js"
