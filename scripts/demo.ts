/**
 * The demo: the whole kernel end to end on one machine, with no keys and no network.
 *
 * The models are SIMULATED: four local OpenAI-compatible endpoints on 127.0.0.1 answer by rule
 * (see `lib/simulatedModel.ts`). Everything around them is the real thing: the `TierRouter`
 * classifying each prompt and picking a provider through the built-in plugins (plus one custom
 * plugin defined here), streaming over HTTP, local tools, a real MCP server
 * (`@modelcontextprotocol/server-everything` over stdio) with progress notifications, a client
 * tool answered by this script, and a failover when one endpoint goes down. Last, a two-turn
 * conversation kept by the SQL conversation store in the default SQLite file
 * ($XDG_DATA_HOME/effect-agent-kernel/kernel.db, else ~/.local/share/...), which
 * `scripts/chat.ts --continue` can pick up.
 *
 * Usage: npm run demo   (or: npx tsx scripts/demo.ts)
 * Exits 0 when every run did what it should, 1 otherwise.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Stream from "effect/Stream"
import { createRequire } from "node:module"
import * as Path from "node:path"
import * as Agent from "../src/agent/Agent.js"
import * as ConversationStore from "../src/agent/ConversationStore.js"
import * as ConfigManager from "../src/config/ConfigManager.js"
import { PluginError } from "../src/domain/Errors.js"
import type { AgentEvent, RouteSelectedEvent } from "../src/domain/Events.js"
import type { QueryTier } from "../src/domain/Message.js"
import { builtins } from "../src/plugins/builtin.js"
import * as KeyBinding from "../src/plugins/internal/keyBinding.js"
import * as ProviderPlugins from "../src/plugins/ProviderPlugin.js"
import * as OpenAiCompatible from "../src/providers/OpenAiCompatible.js"
import * as QueryClassifier from "../src/router/QueryClassifier.js"
import * as TierRouter from "../src/router/TierRouter.js"
import * as SecretsManager from "../src/secrets/SecretsManager.js"
import * as Storage from "../src/storage/Storage.js"
import { clientTools } from "../src/tools/ClientTools.js"
import { localTools } from "../src/tools/LocalTools.js"
import * as McpTools from "../src/tools/McpTools.js"
import * as Toolbox from "../src/tools/Toolbox.js"
import * as OpenAiServer from "../test/peers/OpenAiServer.js"
import { makeRenderer, type Renderer } from "./lib/render.js"
import { simulatedModel } from "./lib/simulatedModel.js"
import { calculator, currentTime } from "./lib/tools.js"

// ---------------------------------------------------------------- the runs

interface Run {
  readonly title: string
  readonly prompt: string
  /** Done before the run (the failover run closes an endpoint). */
  readonly before?: (endpoints: Endpoints) => Effect.Effect<string>
  readonly expect: {
    readonly tier: QueryTier
    readonly provider: ProviderId
    readonly tools?: ReadonlyArray<string>
    readonly progress?: boolean
    readonly skipped?: ProviderId
  }
}

const runs: ReadonlyArray<Run> = [
  {
    title: "simple tier · a local tool",
    prompt: "Hi! What time is it right now?",
    expect: { tier: "simple", provider: "ollama", tools: ["current_time"] }
  },
  {
    title: "moderate tier · an MCP tool and a local tool, called at once",
    prompt: "Calculate 17 + 25 with get-sum and check it with the calculator.",
    expect: { tier: "moderate", provider: "litellm", tools: ["get-sum", "calculator"] }
  },
  {
    title: "complex tier · an MCP tool reporting progress",
    prompt: "Compare the trade-offs of a long-running background job with progress reports versus a queue, " +
      "and run the long-running operation to show one.",
    expect: { tier: "complex", provider: "openai", tools: ["trigger-long-running-operation"], progress: true }
  },
  {
    title: "reasoning tier · a client tool",
    prompt: "Prove step by step that the sum of the first n odd numbers is n squared, and ask for approval to " +
      "publish the proof.",
    expect: { tier: "reasoning", provider: "deepthink", tools: ["request_approval"] }
  },
  {
    title: "failover · the reasoning endpoint is down",
    prompt: "Prove step by step that the square root of 2 is irrational.",
    before: (endpoints) =>
      Effect.as(endpoints.deepthink.close, "deepthink's endpoint is now closed (a simulated outage)."),
    expect: { tier: "reasoning", provider: "openai", skipped: "deepthink" }
  }
]

// ---------------------------------------------------------------- providers

type ProviderId = "ollama" | "litellm" | "openai" | "deepthink"
type Endpoints = Record<ProviderId, OpenAiServer.OpenAiServer>

const tierMapping: Record<QueryTier, ProviderId> = {
  simple: "ollama",
  moderate: "litellm",
  complex: "openai",
  reasoning: "deepthink"
}

const models: Record<ProviderId, string> = {
  ollama: "sim-small",
  litellm: "sim-medium",
  openai: "sim-large",
  deepthink: "sim-reasoner"
}

/** Not a real key: the simulated OpenAI endpoint only checks that it arrives. */
const fakeOpenAiKey = "sk-demo-0000-not-a-real-key"

/**
 * A custom provider plugin, to show the contract: any OpenAI-compatible server at
 * `providers.deepthink.baseUrl`. The built-in plugins are made the same way.
 */
const deepthink: ProviderPlugins.ProviderPlugin = {
  id: "deepthink",
  name: "DeepThink (demo plugin)",
  description: "A reasoning model behind an OpenAI-compatible endpoint; defined in scripts/demo.ts.",
  type: "provider",
  version: "0.1.0",
  createProvider: (secrets, config) =>
    Effect.gen(function*() {
      const setting = (key: string) =>
        Effect.map(config.get(`providers.deepthink.${key}`), (value) => Option.getOrUndefined(Option.filter(value, Predicate.isString)))
      const baseUrl = yield* setting("baseUrl")
      if (baseUrl === undefined) {
        return yield* new PluginError({
          reason: "NotConfigured",
          pluginId: "deepthink",
          message: "Set providers.deepthink.baseUrl to the server's URL."
        })
      }
      return yield* OpenAiCompatible.make({ id: "deepthink", model: (yield* setting("model")) ?? "sim-reasoner", baseUrl }).pipe(
        Effect.provideService(SecretsManager.SecretsManager, secrets)
      )
    })
}

const demoConfig = (endpoints: Endpoints) => ({
  plugins: { enabled: ["ollama", "litellm", "openai", "deepthink"] },
  routing: { tierMapping },
  providers: Object.fromEntries(
    (Object.keys(endpoints) as Array<ProviderId>).map((id) => [id, { baseUrl: endpoints[id].url, model: models[id] }])
  )
})

/** The routed `LanguageModel`: in-memory config and secrets, the plugins, the classifier. */
const modelLayer = (endpoints: Endpoints) => {
  const base = Layer.mergeAll(
    ConfigManager.layerMemory(demoConfig(endpoints)),
    // No environment fallback: whatever keys this machine has are never used by the demo.
    SecretsManager.layerMemoryWith({
      // The key as pairing leaves it: bound to the base URL it was paired for (a stored key is
      // never sent anywhere else).
      initial: {
        [SecretsManager.buildProviderKeyName("openai")]: fakeOpenAiKey,
        [KeyBinding.bindingKeyName("openai")]: KeyBinding.normalizeBaseUrl(endpoints.openai.url)
      },
      envFallback: false
    }),
    NodeHttpClient.layerUndici
  )
  return TierRouter.layer.pipe(
    Layer.provide(Layer.mergeAll(ProviderPlugins.layer({ builtins: [...builtins, deepthink] }), QueryClassifier.layerConfig)),
    Layer.provide(base)
  )
}

// ---------------------------------------------------------------- tools

/** server-everything's entry point in node_modules; its first argument picks the transport. */
const everythingEntry = Path.join(
  Path.dirname(createRequire(import.meta.url).resolve("@modelcontextprotocol/server-everything/package.json")),
  "dist",
  "index.js"
)

/** Local tools, the real MCP server over stdio (closed with the layer), and a client tool. */
const toolboxLayer = (renderer: Renderer) =>
  Layer.unwrapScoped(
    Effect.gen(function*() {
      const everything = yield* McpTools.make({
        serverId: "everything",
        command: process.execPath,
        args: [everythingEntry, "stdio"],
        stderr: "ignore"
      })
      const approval = clientTools([{
        name: "request_approval",
        description: "Asks the user to approve an action and returns their decision.",
        parameters: {
          type: "object",
          properties: { action: { type: "string", description: "What needs approval" } },
          required: ["action"]
        }
      }], {
        name: "demo-client",
        // A real host would show a dialog; the demo approves after a moment's "thought".
        onInputRequired: (call) =>
          Effect.gen(function*() {
            yield* Effect.sleep("300 millis")
            renderer.line(`  ${renderer.style.yellow("client approved")} “${String(call.arguments.action)}” ` +
              renderer.style.dim("(answered by the demo's onInputRequired callback)"))
            return { success: true as const, result: { approved: true, by: "demo user" } }
          })
      })
      return Toolbox.layer([localTools([currentTime, calculator]), everything, approval])
    })
  )

// ---------------------------------------------------------------- running and checking

interface Seen {
  readonly routes: Array<RouteSelectedEvent>
  readonly toolsCompleted: Set<string>
  progress: number
  answer: string
  completed: boolean
}

const check = (run: Run, seen: Seen): Array<string> => {
  const problems: Array<string> = []
  const { expect } = run
  const first = seen.routes[0]
  if (first === undefined) problems.push("no route-selected event")
  else if (first.tier !== expect.tier || first.provider !== expect.provider) {
    problems.push(`routed ${first.tier} → ${first.provider}, expected ${expect.tier} → ${expect.provider}`)
  }
  for (const tool of expect.tools ?? []) {
    if (!seen.toolsCompleted.has(tool)) problems.push(`tool ${tool} did not complete`)
  }
  if (expect.progress === true && seen.progress === 0) problems.push("no tool-progress event")
  if (expect.skipped !== undefined && !first?.fallbacksTried?.some((attempt) => attempt.provider === expect.skipped)) {
    problems.push(`route-selected does not list ${expect.skipped} in fallbacksTried`)
  }
  if (!seen.completed) problems.push("no task-complete event")
  if (!seen.answer.includes("[simulated model")) problems.push("the answer did not come from a simulated endpoint")
  return problems
}

const runOne = (run: Run, index: number, endpoints: Endpoints, renderer: Renderer) =>
  Effect.gen(function*() {
    const { style } = renderer
    renderer.line("")
    renderer.line(style.bold(`━━ ${index + 1}/${runs.length} · ${run.title} ━━`))
    if (run.before !== undefined) renderer.line(style.yellow(`  ✂ ${yield* run.before(endpoints)}`))
    renderer.line(`${style.bold("you ›")} ${run.prompt}`)
    const seen: Seen = { routes: [], toolsCompleted: new Set(), progress: 0, answer: "", completed: false }
    const record = (event: AgentEvent) => {
      if (event.type === "route-selected") seen.routes.push(event)
      else if (event.type === "tool-complete") seen.toolsCompleted.add(event.toolName)
      else if (event.type === "tool-progress") seen.progress++
      else if (event.type === "task-complete") {
        seen.completed = true
        seen.answer = event.content
      }
    }
    const started = performance.now()
    const outcome = yield* Agent.run({ prompt: run.prompt }).pipe(
      Stream.runForEach((event) =>
        Effect.sync(() => {
          record(event)
          renderer.render(event)
        })
      ),
      Effect.either
    )
    renderer.close()
    const problems = outcome._tag === "Left" ? [`the run failed: ${outcome.left.message}`] : check(run, seen)
    const elapsed = `${((performance.now() - started) / 1000).toFixed(1)} s`
    renderer.line(
      problems.length === 0
        ? style.dim(`  ✓ as expected (${elapsed})`)
        : style.red(`  ✗ unexpected (${elapsed}): ${problems.join("; ")}`)
    )
    return problems.length
  })

/**
 * Two turns of one conversation through `Agent.make` and the SQL store: the second turn's request
 * carries the first, and the conversation stays in the database after the demo.
 */
const conversation = (renderer: Renderer) =>
  Effect.gen(function*() {
    const { style } = renderer
    const storage = yield* Storage.Storage
    const agent = yield* Agent.make({ name: "demo", toolbox: yield* Toolbox.Toolbox, store: yield* ConversationStore.makeSql })
    const contextId = `demo-${new Date().toISOString().replace(/[:.]/g, "-")}`
    renderer.line("")
    renderer.line(style.bold("━━ and a stored conversation ━━"))
    for (const prompt of ["Hi, I'm Ada.", "What did I just tell you?"]) {
      renderer.line(`${style.bold("you ›")} ${prompt}`)
      yield* agent.run({ prompt, contextId }).pipe(Stream.runForEach((event) => Effect.sync(() => renderer.render(event))))
      renderer.close()
    }
    const stored = (yield* agent.history(contextId)).length
    renderer.line(style.dim(`  ✓ ${stored} messages kept in ${storage.database}; go on with: npx tsx scripts/chat.ts --continue ${contextId}`))
    return stored === 4 ? 0 : 1
  })

const banner = (renderer: Renderer, endpoints: Endpoints) => {
  const { style } = renderer
  renderer.line(style.bold("effect-agent-kernel demo"))
  renderer.line(style.yellow(
    "The models in this demo are SIMULATED: scripted OpenAI-compatible endpoints on 127.0.0.1 that answer by rule.\n" +
      "No API keys, no network. Routing, streaming, tools, MCP and failover are the real code paths."
  ))
  renderer.line("")
  renderer.line("Tier mapping (in-memory config; each provider points at its own local endpoint):")
  const notes: Record<ProviderId, string> = {
    ollama: "built-in plugin",
    litellm: "built-in plugin",
    openai: "built-in plugin, fake key in the in-memory secrets store",
    deepthink: "custom plugin defined in scripts/demo.ts"
  }
  for (const [tier, id] of Object.entries(tierMapping) as Array<[QueryTier, ProviderId]>) {
    renderer.line(`  ${tier.padEnd(9)} → ${id.padEnd(9)} ${style.dim(`${endpoints[id].url}  (${notes[id]})`)}`)
  }
}

const main = Effect.gen(function*() {
  const renderer = makeRenderer({ answerLabel: "model ›" })
  const started = performance.now()
  const endpoints: Endpoints = {
    ollama: yield* OpenAiServer.start({ script: simulatedModel("ollama") }),
    litellm: yield* OpenAiServer.start({ script: simulatedModel("litellm") }),
    openai: yield* OpenAiServer.start({ script: simulatedModel("openai") }),
    deepthink: yield* OpenAiServer.start({ script: simulatedModel("deepthink") })
  }
  banner(renderer, endpoints)

  const failures = yield* Effect.gen(function*() {
    const tools = yield* Effect.flatMap(Toolbox.Toolbox, (toolbox) => toolbox.getTools)
    renderer.line(
      `Tools: ${tools.length} — local current_time and calculator, request_approval (a client tool), and ` +
        `${tools.length - 3} from server-everything over stdio (get-sum, trigger-long-running-operation, …)`
    )
    let failures = 0
    for (const [index, run] of runs.entries()) failures += yield* runOne(run, index, endpoints, renderer)
    return failures + (yield* conversation(renderer))
  }).pipe(Effect.provide(Layer.mergeAll(modelLayer(endpoints), toolboxLayer(renderer), Storage.layer())))

  const { style } = renderer
  const served = (Object.keys(endpoints) as Array<ProviderId>).map((id) => `${id} ${endpoints[id].completions.length}`)
  const keyArrived = endpoints.openai.completions.every((request) =>
    request.headers.authorization === `Bearer ${fakeOpenAiKey}`
  )
  renderer.line("")
  renderer.line(`Requests served per endpoint: ${served.join(", ")}`)
  renderer.line(`The openai endpoint received the key from the secrets store on every request: ${keyArrived ? "yes" : "NO"}`)
  const elapsed = `${((performance.now() - started) / 1000).toFixed(1)} s`
  if (failures > 0 || !keyArrived) {
    renderer.line(style.red(`✗ demo finished with problems (${elapsed}); see the ✗ lines above.`))
    return yield* Effect.fail("failed checks" as const)
  }
  renderer.line(style.green(`✓ demo finished: ${runs.length} runs, every check passed (${elapsed}). The MCP server has been closed.`))
}).pipe(
  Effect.scoped,
  Effect.catchAllCause((cause) =>
    Cause.isFailType(cause) && cause.error === "failed checks"
      ? Effect.failCause(cause)
      : Effect.zipRight(
        Effect.sync(() => console.error(`\n✗ the demo crashed:\n${Cause.pretty(cause)}`)),
        Effect.failCause(cause)
      )
  )
)

NodeRuntime.runMain(main, { disableErrorReporting: true })
