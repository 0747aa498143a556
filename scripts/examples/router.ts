// Production layers: the tier router over the built-in plugins, file-backed config and secrets.
import { NodeContext, NodeHttpClient } from "@effect/platform-node"
import { Layer } from "effect"
import {
  BuiltinPlugins,
  ConfigManager,
  ProviderPlugin,
  QueryClassifier,
  SecretsManager,
  TierRouter
} from "effect-agent-kernel"

export const ModelLive = TierRouter.layer.pipe(
  Layer.provide(ProviderPlugin.layer({ builtins: BuiltinPlugins.builtins })),
  Layer.provide(QueryClassifier.layerConfig),
  Layer.provideMerge(Layer.mergeAll(ConfigManager.layerFile(), SecretsManager.layer)),
  Layer.provide(Layer.merge(NodeContext.layer, NodeHttpClient.layerUndici))
)
