import { NodeContext, NodeHttpClient } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import * as Agent from "../../src/agent/Agent.js"
import * as ConfigManager from "../../src/config/ConfigManager.js"
import type { AgentEvent } from "../../src/domain/Events.js"
import { builtins } from "../../src/plugins/builtin.js"
import * as PluginRegistry from "../../src/plugins/ProviderPlugin.js"
import * as QueryClassifier from "../../src/router/QueryClassifier.js"
import * as TierRouter from "../../src/router/TierRouter.js"
import * as SecretsManager from "../../src/secrets/SecretsManager.js"
import * as McpTools from "../../src/tools/McpTools.js"
import * as Toolbox from "../../src/tools/Toolbox.js"
import { everythingStdio, everythingStdioWithPidFile } from "../peers/McpServers.js"
import * as OpenAiServer from "../peers/OpenAiServer.js"

/**
 * The scripted model behind every tier: it calls the first tool named in the prompt (with fixed
 * arguments), and once a tool result is in, it answers quoting it.
 */
const scriptedModel = (request: OpenAiServer.RecordedRequest): OpenAiServer.Step => {
  const messages: ReadonlyArray<{ role: string; content: string | null }> = request.body?.messages ?? []
  const last = messages.at(-1)
  if (last?.role === "tool") {
    return OpenAiServer.sse(OpenAiServer.textChunks(["The tool said: ", String(last.content)], { usage: OpenAiServer.usage(30, 8) }))
  }
  const prompt = String(messages.findLast((message) => message.role === "user")?.content ?? "")
  if (prompt.includes("get-sum")) {
    return OpenAiServer.sse(OpenAiServer.toolCallChunks([{ id: "sum1", name: "get-sum", arguments: { a: 2, b: 3 } }]))
  }
  if (prompt.includes("long")) {
    return OpenAiServer.sse(OpenAiServer.toolCallChunks([{
      id: "long1",
      name: "trigger-long-running-operation",
      arguments: { duration: 60, steps: 60 }
    }]))
  }
  return OpenAiServer.hang
}

const routedModel = (url: string) =>
  TierRouter.layer.pipe(
    Layer.provide(PluginRegistry.layer({ builtins })),
    Layer.provide(QueryClassifier.layer),
    Layer.provideMerge(
      Layer.mergeAll(
        ConfigManager.layerMemory({
          plugins: { enabled: ["ollama"] },
          providers: { ollama: { baseUrl: url, model: "e2e" } }
        }),
        SecretsManager.layerMemoryWith({ envFallback: false })
      )
    ),
    Layer.provide(NodeHttpClient.layerUndici)
  )

const mcpToolbox = (options: McpTools.McpToolProviderOptions) =>
  Layer.unwrapScoped(Effect.map(McpTools.make(options), (provider) => Toolbox.layer([provider])))

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe("Agent.run end to end", () => {
  it.live("routes through the TierRouter to a local server, calls server-everything over stdio, and answers", () =>
    Effect.gen(function*() {
      const server = yield* OpenAiServer.start({ script: scriptedModel })
      const events = yield* Agent.run({ prompt: "Please add 2 and 3 with get-sum." }).pipe(
        Stream.runCollect,
        Effect.map(Chunk.toReadonlyArray),
        Effect.provide(
          Layer.merge(routedModel(server.url), mcpToolbox({ serverId: "everything", ...everythingStdio }))
        )
      )
      const route = events.find((event) => event.type === "route-selected")
      expect(route).toMatchObject({ provider: "ollama" })
      const complete = events.find((event) => event.type === "tool-complete")
      expect(complete).toMatchObject({ toolName: "get-sum", toolCallId: "sum1" })
      expect(JSON.stringify(complete)).toContain("5")
      const last = events.at(-1) as AgentEvent
      expect(last.type).toBe("task-complete")
      expect(last.type === "task-complete" && last.content).toMatch(/^The tool said: .*5/)
      expect(last.type === "task-complete" && last.usage).toMatchObject({ inputTokens: 30, outputTokens: 8 })
      expect(server.completions).toHaveLength(2)
      expect(server.completions[1]!.body.messages.at(-1)).toMatchObject({ role: "tool", tool_call_id: "sum1" })
    }).pipe(Effect.scoped))

  it.live("interrupting a run closes the model request's socket", () =>
    Effect.gen(function*() {
      const server = yield* OpenAiServer.start({ script: scriptedModel })
      const fiber = yield* Agent.run({ prompt: "Just wait for me." }).pipe(
        Stream.runDrain,
        Effect.provide(Layer.merge(routedModel(server.url), Toolbox.layer([]))),
        Effect.fork
      )
      yield* server.waitForRequests(1, "/v1/chat/completions")
      yield* Fiber.interrupt(fiber)
      yield* Effect.promise(() => server.completions[0]!.closed)
      expect(server.completions[0]!.abortedByClient()).toBe(true)
    }).pipe(Effect.scoped))

  it.live("interrupting a run mid tool call cancels it, and closing the layers leaves no child process", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped()
      const pidFile = `${dir}/mcp.pid`
      const server = yield* OpenAiServer.start({ script: scriptedModel })
      const scope = yield* Scope.make()
      const layers = yield* Layer.buildWithScope(
        Layer.merge(routedModel(server.url), mcpToolbox({ serverId: "everything", ...everythingStdioWithPidFile(pidFile) })),
        scope
      )
      const progressed = yield* Deferred.make<void>()
      const fiber = yield* Agent.run({ prompt: "Start the long operation." }).pipe(
        Stream.runForEach((event) => event.type === "tool-progress" ? Deferred.succeed(progressed, undefined) : Effect.void),
        Effect.provide(layers),
        Effect.fork
      )
      yield* Deferred.await(progressed)
      const pid = Number((yield* fs.readFileString(pidFile)).trim())
      expect(isAlive(pid)).toBe(true)
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      // The model was asked once and its socket is closed; no second request was made.
      yield* Effect.promise(() => server.completions[0]!.closed)
      expect(server.completions).toHaveLength(1)
      yield* Scope.close(scope, Exit.void)
      yield* Effect.promise(() => waitUntil(() => !isAlive(pid), 5_000))
      expect(isAlive(pid)).toBe(false)
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)))
})

/** Polls a condition (real time) until it holds or the bound passes. */
const waitUntil = async (condition: () => boolean, boundMs: number) => {
  const deadline = Date.now() + boundMs
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
}
