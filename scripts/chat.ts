/**
 * Chat with the agent from a terminal, answers streamed as they arrive.
 *
 *   npx tsx scripts/chat.ts "What is 17 * 23?"     one question, then exit
 *   npx tsx scripts/chat.ts                         a conversation (type /help inside)
 *   npx tsx scripts/chat.ts --list                  the stored conversations
 *   npx tsx scripts/chat.ts --continue <contextId>  go on with a stored conversation
 *
 * Flags: --tier <simple|moderate|complex|reasoning> forces a routing tier; --config <path> and
 * --secrets <path> pick the configuration file and the encrypted secrets file (defaults under
 * $XDG_CONFIG_HOME/effect-agent-kernel, else ~/.config/effect-agent-kernel).
 *
 * The model is the `TierRouter` over the enabled provider plugins; the tools are `current_time`,
 * `calculator` and the tools of the MCP servers configured under `mcp.servers`. Providers are
 * paired with `scripts/pair.ts` (`/pair` inside says how); with `--pairing-tools` the model is
 * also offered the plugins' pairing tools ("pair openai with key …"), which can pair a provider
 * for the first time but never change a base URL or replace a stored key. When no provider can
 * serve, it says what to do and exits with status 1.
 *
 * Conversations are stored through `Storage` (the configuration's `storage.url`; by default the
 * SQLite file under $XDG_DATA_HOME/effect-agent-kernel), so they outlive the chat.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Readline from "node:readline"
import { parseArgs } from "node:util"
import * as Agent from "../src/agent/Agent.js"
import * as ConversationStore from "../src/agent/ConversationStore.js"
import * as ConfigManager from "../src/config/ConfigManager.js"
import { McpServer, Tier, tiers } from "../src/config/KernelConfig.js"
import type { AgentError } from "../src/domain/Errors.js"
import { builtins } from "../src/plugins/builtin.js"
import * as ProviderPlugins from "../src/plugins/ProviderPlugin.js"
import * as QueryClassifier from "../src/router/QueryClassifier.js"
import * as TierRouter from "../src/router/TierRouter.js"
import * as SecretsManager from "../src/secrets/SecretsManager.js"
import * as Storage from "../src/storage/Storage.js"
import { localTools } from "../src/tools/LocalTools.js"
import * as McpTools from "../src/tools/McpTools.js"
import type { ToolProvider } from "../src/tools/ToolProvider.js"
import * as Toolbox from "../src/tools/Toolbox.js"
import { guidance, unservedCause } from "./lib/guidance.js"
import { clip, makeRenderer, type Renderer } from "./lib/render.js"
import { calculator, currentTime } from "./lib/tools.js"

const usage = `Usage: npx tsx scripts/chat.ts [--tier <tier>] [--config <path>] [--secrets <path>] [--pairing-tools]
                           [--list | --continue <contextId>] ["question"]
  With a question: answers it and exits. Without: a conversation; type /help inside.
  --list     list the stored conversations (most recent first) and exit
  --continue go on with a stored conversation (its id from --list)
  --tier     force a routing tier: ${tiers.join(", ")}
  --pairing-tools  offer the providers' pairing tools to the model (off by default: pair with scripts/pair.ts)
  --config   the configuration file (default $XDG_CONFIG_HOME/effect-agent-kernel/config.json)
  --secrets  the encrypted secrets file (default $XDG_CONFIG_HOME/effect-agent-kernel/secrets.enc)`

const commands =
  `Commands: /new (forget the conversation), /tier <tier|auto>, /tools, /pair [provider], /help, /exit (or Ctrl-D).`

/** How to pair a provider while the chat runs: another terminal, picked up on the next message. */
const pairAdvice = (provider: string | undefined): string => {
  const known = builtins.map((plugin) => plugin.id)
  const target = provider !== undefined && known.includes(provider.toLowerCase()) ? provider.toLowerCase() : "<provider>"
  return `In another terminal run: npx tsx scripts/pair.ts ${target}   (providers: ${known.join(", ")}). ` +
    `It asks for the key without echo; this chat uses it from the next message on.`
}

/** Ends the program with status 1; what went wrong has been printed already. */
class ChatFailed extends Data.TaggedError("ChatFailed")<{}> {}

// ---------------------------------------------------------------- arguments

interface Options {
  readonly question: string | undefined
  readonly tier: Tier | undefined
  readonly configPath: string | undefined
  readonly secretsPath: string | undefined
  readonly pairingTools: boolean
  readonly list: boolean
  readonly continueId: string | undefined
}

const parseOptions = (): Options | string => {
  let parsed
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        tier: { type: "string" },
        config: { type: "string" },
        secrets: { type: "string" },
        "pairing-tools": { type: "boolean" },
        list: { type: "boolean" },
        continue: { type: "string" },
        help: { type: "boolean", short: "h" }
      }
    })
  } catch (error) {
    return `${error instanceof Error ? error.message : String(error)}\n${usage}`
  }
  const { positionals, values } = parsed
  if (values.help === true) return usage
  const tier = values.tier
  if (tier !== undefined && !Schema.is(Tier)(tier)) return `--tier must be one of ${tiers.join(", ")}, not "${tier}".`
  return {
    question: positionals.length > 0 ? positionals.join(" ") : undefined,
    tier,
    configPath: values.config,
    secretsPath: values.secrets,
    pairingTools: values["pairing-tools"] === true,
    list: values.list === true,
    continueId: values.continue
  }
}

// ---------------------------------------------------------------- layers

const McpServers = Schema.Record({ key: Schema.String, value: McpServer })

/**
 * One `McpToolProvider` per `mcp.servers` entry. A server that cannot be reached or listed is
 * reported and left out, so one broken server does not keep the chat from starting.
 */
const mcpProviders = (renderer: Renderer) =>
  Effect.gen(function*() {
    const config = yield* ConfigManager.ConfigManager
    const servers = yield* config.getAs("mcp.servers", McpServers)
    if (Option.isNone(servers)) return []
    const providers: Array<ToolProvider> = []
    for (const [serverId, server] of Object.entries(servers.value)) {
      const common = {
        serverId,
        ...(server.prefix !== undefined ? { prefix: server.prefix } : {}),
        ...(server.timeoutMs !== undefined ? { timeout: server.timeoutMs } : {})
      }
      const made = yield* Effect.either(
        server.url !== undefined
          ? McpTools.make({ ...common, serverUrl: server.url })
          : McpTools.make({
            ...common,
            command: server.command!,
            ...(server.args !== undefined ? { args: server.args } : {}),
            ...(server.env !== undefined ? { env: server.env } : {}),
            stderr: "ignore"
          })
      )
      const listed = made._tag === "Right" ? yield* Effect.either(made.right.getTools) : made
      if (made._tag === "Right" && listed._tag === "Right") {
        providers.push(made.right)
      } else {
        const reason = listed._tag === "Left" ? listed.left.message : "unknown"
        renderer.line(renderer.style.yellow(`MCP server "${serverId}" left out: ${reason}`))
      }
    }
    return providers
  })

const toolboxLayer = (renderer: Renderer, offerPairing: boolean) =>
  Layer.unwrapScoped(
    Effect.gen(function*() {
      const registry = yield* ProviderPlugins.PluginRegistry
      const pairing = offerPairing ? yield* registry.pairingTools : []
      const mcp = yield* mcpProviders(renderer)
      return Toolbox.layer([localTools([currentTime, calculator]), ...pairing, ...mcp])
    })
  )

/** The configuration and secrets files, and the conversations' database they name. */
const filesLayer = (options: Options) => {
  const files = Layer.mergeAll(
    ConfigManager.layerFile(options.configPath !== undefined ? { path: options.configPath } : {}),
    options.secretsPath !== undefined
      ? SecretsManager.layerFile({ path: options.secretsPath })
      : SecretsManager.layer
  ).pipe(Layer.provide(NodeContext.layer))
  return Storage.layerConfig().pipe(Layer.provideMerge(files))
}

const appLayer = (options: Options, renderer: Renderer) => {
  const services = Layer.mergeAll(ProviderPlugins.layer({ builtins }), QueryClassifier.layerConfig).pipe(
    Layer.provideMerge(Layer.merge(filesLayer(options), NodeHttpClient.layerUndici))
  )
  return Layer.mergeAll(TierRouter.layer, toolboxLayer(renderer, options.pairingTools)).pipe(Layer.provideMerge(services))
}

/** `--list`: the stored conversations, newest first, without starting a model or tools. */
const listConversations = (renderer: Renderer) =>
  Effect.gen(function*() {
    const storage = yield* Storage.Storage
    const conversations = yield* (yield* ConversationStore.makeSql).list()
    renderer.line(renderer.style.dim(`Conversations in ${storage.database}:`))
    if (conversations.length === 0) renderer.line("  (none yet)")
    for (const conversation of conversations) {
      const updated = new Date(conversation.updatedAt).toISOString().replace("T", " ").slice(0, 16)
      renderer.line(`  ${conversation.contextId}  ${String(conversation.messages).padStart(4)} messages  ${updated}`)
    }
    renderer.line(renderer.style.dim("Go on with one: npx tsx scripts/chat.ts --continue <id>"))
  })

// ---------------------------------------------------------------- one turn

/** Why a turn did not answer: no provider could serve (fatal), or anything else. */
type TurnOutcome = "answered" | "unserved" | "failed" | "interrupted"

const reportFailure = (error: AgentError, renderer: Renderer) =>
  Effect.gen(function*() {
    const { style } = renderer
    const cause = unservedCause(error)
    if (cause === undefined) {
      renderer.line(style.red(`✗ ${error.message}`))
      return "failed" as const
    }
    const config = yield* ConfigManager.ConfigManager
    const secrets = yield* SecretsManager.SecretsManager
    const tier = cause._tag === "RoutingError" && cause.tier !== undefined ? ` (tier ${cause.tier})` : ""
    renderer.line(style.red(`✗ No model provider could answer${tier}.`))
    renderer.line(style.bold("What to do:"))
    for (const line of yield* guidance(cause, config, secrets)) renderer.line(`  ${line}`)
    renderer.line(style.dim("  Then run this again."))
    return "unserved" as const
  })

// ---------------------------------------------------------------- interactive input

/** Reads lines; `None` when input ends (Ctrl-D, end of a pipe) or Ctrl-C at the prompt. */
const makePrompt = Effect.acquireRelease(
  Effect.sync(() => Readline.createInterface({ input: process.stdin, output: process.stdout })),
  (rl) => Effect.sync(() => rl.close())
).pipe(
  Effect.map((rl) => {
    let closed = false
    let onInterrupt: (() => void) | undefined
    rl.on("close", () => {
      closed = true
    })
    // Ctrl-C stops the answer being written; at the prompt it quits.
    rl.on("SIGINT", () => (onInterrupt !== undefined ? onInterrupt() : rl.close()))
    const ask = (query: string) =>
      Effect.async<Option.Option<string>>((resume) => {
        if (closed) return resume(Effect.succeed(Option.none()))
        const onClose = () => resume(Effect.succeed(Option.none()))
        rl.once("close", onClose)
        rl.question(query, (answer) => {
          rl.off("close", onClose)
          // Piped input is not echoed; show it so a transcript reads like a conversation.
          if (process.stdin.isTTY !== true) process.stdout.write(`${answer}\n`)
          resume(Effect.succeed(Option.some(answer)))
        })
        return Effect.sync(() => rl.off("close", onClose))
      })
    const interruptible = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(effect)
        onInterrupt = () => Effect.runFork(Fiber.interrupt(fiber))
        return yield* Effect.ensuring(Fiber.join(fiber), Effect.sync(() => (onInterrupt = undefined)))
      })
    return { ask, interruptible }
  })
)

// ---------------------------------------------------------------- main

const main = Effect.gen(function*() {
  const parsed = parseOptions()
  if (typeof parsed === "string") {
    const isHelp = parsed === usage
    yield* Effect.sync(() => (isHelp ? console.log(parsed) : console.error(parsed)))
    return isHelp ? undefined : yield* new ChatFailed()
  }
  const renderer = makeRenderer({ answerLabel: "assistant ›", showStepUsage: false, showFailure: false })
  const { style } = renderer
  const failed = {
    ConfigError: (error: { readonly message: string }) => report(renderer, error.message),
    SecretsError: (error: { readonly message: string }) => report(renderer, error.message),
    StorageError: (error: { readonly message: string }) => report(renderer, error.message),
    ToolError: (error: { readonly message: string }) => report(renderer, `The tools could not be set up: ${error.message}`)
  }
  if (parsed.list) {
    return yield* listConversations(renderer).pipe(
      Effect.provide(filesLayer(parsed)),
      Effect.catchTags({
        ConfigError: failed.ConfigError,
        SecretsError: failed.SecretsError,
        StorageError: failed.StorageError,
        AgentError: (error) => report(renderer, error.message)
      })
    )
  }

  const program = Effect.gen(function*() {
    const config = yield* ConfigManager.ConfigManager
    const toolbox = yield* Toolbox.Toolbox
    const store = yield* ConversationStore.makeSql
    const agent = yield* Agent.make({ name: "chat", toolbox, store })
    const maxSteps = Option.getOrUndefined(yield* config.getAs("agent.maxSteps", Schema.Number))
    let tier = parsed.tier
    let contextId: string = parsed.continueId ?? crypto.randomUUID()
    if (parsed.continueId !== undefined) {
      const stored = yield* Effect.catchAll(store.load(parsed.continueId), (error) => report(renderer, error.message))
      if (Option.isNone(stored)) {
        return yield* report(renderer, `No stored conversation ${parsed.continueId}: npx tsx scripts/chat.ts --list shows them.`)
      }
      renderer.line(style.dim(`Going on with conversation ${contextId} (${stored.value.messages.length} messages).`))
    }

    const turn = (prompt: string) =>
      agent.run({
        prompt,
        contextId,
        ...(tier !== undefined ? { tier } : {}),
        ...(maxSteps !== undefined ? { maxSteps } : {})
      }).pipe(
        Stream.runForEach((event) => Effect.sync(() => renderer.render(event))),
        Effect.as<TurnOutcome>("answered"),
        Effect.catchAll((error) => reportFailure(error, renderer)),
        Effect.ensuring(Effect.sync(() => renderer.close())),
        Effect.onInterrupt(() => Effect.sync(() => renderer.line(style.yellow("  (interrupted)"))))
      )

    if (parsed.question !== undefined) {
      const outcome = yield* turn(parsed.question)
      if (outcome !== "answered") return yield* new ChatFailed()
      return
    }

    const routes = yield* Effect.forEach(tiers, (name) =>
      Effect.map(config.get(`routing.tierMapping.${name}`), (provider) => `${name} → ${Option.getOrElse(provider, () => "?")}`))
    const tools = yield* toolbox.getTools
    renderer.line(style.bold("effect-agent-kernel chat"))
    renderer.line(style.dim(`Routes: ${routes.join(", ")}${tier !== undefined ? ` (forced: ${tier})` : ""}`))
    renderer.line(style.dim(`Tools: ${tools.length}. ${commands}`))
    renderer.line(style.dim(`Conversation ${contextId}, kept in ${(yield* Storage.Storage).database}.`))
    const prompt = yield* makePrompt
    while (true) {
      const line = yield* prompt.ask(`${style.bold("you ›")} `)
      if (Option.isNone(line)) break
      const text = line.value.trim()
      if (text === "") continue
      if (text === "/exit" || text === "/quit") break
      if (text === "/help") {
        renderer.line(commands)
        continue
      }
      if (text === "/new") {
        contextId = crypto.randomUUID()
        renderer.line(style.dim("New conversation."))
        continue
      }
      if (text === "/tools") {
        for (const definition of yield* toolbox.getTools) renderer.line(`  ${definition.name} ${style.dim(clip(definition.description, 90))}`)
        continue
      }
      if (text === "/pair" || text.startsWith("/pair ")) {
        renderer.line(pairAdvice(text.slice("/pair".length).trim() || undefined))
        continue
      }
      if (text.startsWith("/tier")) {
        const wanted = text.slice("/tier".length).trim()
        if (wanted === "auto") tier = undefined
        else if (Schema.is(Tier)(wanted)) tier = wanted
        else renderer.line(style.yellow(`Use /tier ${tiers.join("|")}|auto`))
        renderer.line(style.dim(`Tier: ${tier ?? "chosen per message"}`))
        continue
      }
      if (/^\/[a-z]+$/i.test(text.split(/\s/)[0]!)) {
        renderer.line(style.yellow(`Unknown command ${text.split(/\s/)[0]}. ${commands}`))
        continue
      }
      const outcome = yield* prompt.interruptible(turn(text)).pipe(
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause)
            ? Effect.succeed<TurnOutcome>("interrupted")
            : Effect.as(Effect.sync(() => renderer.line(style.red(`✗ ${Cause.pretty(cause)}`))), "failed" as const)
        )
      )
      if (outcome === "unserved") return yield* new ChatFailed()
    }
  }).pipe(Effect.scoped)

  return yield* program.pipe(
    Effect.provide(appLayer(parsed, renderer)),
    Effect.catchTags(failed)
  )
})

const report = (renderer: Renderer, message: string) =>
  Effect.zipRight(Effect.sync(() => renderer.line(renderer.style.red(`✗ ${message}`))), new ChatFailed())

NodeRuntime.runMain(main, { disableErrorReporting: true })
