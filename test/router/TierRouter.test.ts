import * as Net from "node:net"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as ConfigManager from "../../src/config/ConfigManager.js"
import { PluginError, type RoutingError } from "../../src/domain/Errors.js"
import * as ExecutionContext from "../../src/domain/ExecutionContext.js"
import type { ToolEvent } from "../../src/domain/Events.js"
import * as Message from "../../src/domain/Message.js"
import type { ChatChunk, QueryTier } from "../../src/domain/Message.js"
import { builtins, operatorPairingTools } from "../../src/plugins/builtin.js"
import * as KeyBinding from "../../src/plugins/internal/keyBinding.js"
import * as PluginRegistry from "../../src/plugins/ProviderPlugin.js"
import * as LanguageModel from "../../src/providers/LanguageModel.js"
import * as OpenAiCompatible from "../../src/providers/OpenAiCompatible.js"
import * as Resilience from "../../src/providers/Resilience.js"
import * as QueryClassifier from "../../src/router/QueryClassifier.js"
import * as TierRouter from "../../src/router/TierRouter.js"
import * as SecretsManager from "../../src/secrets/SecretsManager.js"
import * as Toolbox from "../../src/tools/Toolbox.js"
import * as OpenAiServer from "../peers/OpenAiServer.js"

const OPENAI_KEY = "sk-openai-test-5f4e3d2c1b0a9988"

/** A 503 the provider retries at once (its own retry loop honours `retry-after-ms`). */
const unavailable = OpenAiServer.status(503, { error: { message: "overloaded" } }, { "retry-after-ms": "0" })
const unauthorized = OpenAiServer.status(401, { error: { message: "bad key", code: "invalid_api_key" } })
const answer = (text: string) => OpenAiServer.sse(OpenAiServer.textChunks([text]))
/** The provider's own retry loop makes this many attempts (Resilience's default). */
const providerAttempts = 3

/** A port on 127.0.0.1 that nothing listens on. */
const closedPortUrl = Effect.promise(() =>
  new Promise<string>((resolve) => {
    const server = Net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as Net.AddressInfo
      server.close(() => resolve(`http://127.0.0.1:${port}`))
    })
  })
)

/**
 * ollama (server A) serves simple and moderate, litellm (B) complex, openai (C, with a stored
 * key) reasoning.
 */
const routingConfig = (urls: { readonly a: string; readonly b: string; readonly c: string }) => ({
  plugins: { enabled: ["ollama", "litellm", "openai"] },
  routing: { tierMapping: { simple: "ollama", moderate: "ollama", complex: "litellm", reasoning: "openai" } },
  providers: {
    ollama: { baseUrl: urls.a, model: "model-a" },
    litellm: { baseUrl: urls.b, model: "model-b" },
    openai: { baseUrl: urls.c, model: "model-c" }
  }
})

interface KernelOptions {
  readonly secrets?: Readonly<Record<string, string>>
  readonly loader?: PluginRegistry.ModuleLoader
  readonly plugins?: ReadonlyArray<PluginRegistry.ProviderPlugin>
}

/**
 * Stored keys as pairing leaves them: each bound to the base URL its provider is configured with
 * (a key is only ever sent where it was paired).
 */
const withBindings = (config: Record<string, unknown>, secrets: Readonly<Record<string, string>>) => {
  const out: Record<string, string> = { ...secrets }
  const providers = (config.providers ?? {}) as Record<string, { readonly baseUrl?: string }>
  for (const name of Object.keys(secrets)) {
    const id = /^provider\.([^.]+)\.apiKey$/.exec(name)?.[1]
    const baseUrl = id !== undefined ? providers[id]?.baseUrl : undefined
    if (id !== undefined && baseUrl !== undefined) out[KeyBinding.bindingKeyName(id)] = KeyBinding.normalizeBaseUrl(baseUrl)
  }
  return out
}

/** The real config, secrets, registry, classifier and router, over a real HTTP client. */
const kernel = (config: Record<string, unknown>, options: KernelOptions = {}) => {
  const base = Layer.mergeAll(
    ConfigManager.layerMemory(config),
    SecretsManager.layerMemoryWith({ envFallback: false, initial: withBindings(config, options.secrets ?? {}) }),
    NodeHttpClient.layerUndici
  )
  const registry = PluginRegistry.layer({
    builtins: options.plugins ?? builtins,
    ...(options.loader !== undefined ? { loader: options.loader } : {})
  }).pipe(Layer.provideMerge(base))
  return TierRouter.layer.pipe(
    Layer.provideMerge(Layer.merge(registry, QueryClassifier.layer))
  )
}

/**
 * A provider whose health check is real (`GET /v1/models` on its server, without a cache of its
 * own, so only the router's cache stands between requests and the server) but whose answers come
 * from memory, so that 1,000 requests stay quick.
 */
const quickAnswers: PluginRegistry.ProviderPlugin = {
  id: "quick",
  name: "Quick",
  description: "Answers from memory; health from its server.",
  type: "provider",
  version: "0.0.0",
  createProvider: (_secrets, config) =>
    Effect.gen(function*() {
      const baseUrl = Option.getOrThrow(yield* config.get("providers.quick.baseUrl")) as string
      const server = yield* OpenAiCompatible.makeRaw({ id: "quick", model: "quick", baseUrl, healthTtl: 0 })
      return LanguageModel.make({
        id: "quick",
        name: "Quick",
        isAvailable: server.isAvailable,
        stream: () => Stream.fromIterable<ChatChunk>([{ _tag: "text-delta", delta: "quick" }, { _tag: "finish", finishReason: "stop" }])
      })
    })
}

const withKey = { secrets: { "provider.openai.apiKey": OPENAI_KEY } }

const threeServers = (scripts: {
  readonly a?: OpenAiServer.Options
  readonly b?: OpenAiServer.Options
  readonly c?: OpenAiServer.Options
} = {}) =>
  Effect.all({
    a: OpenAiServer.start(scripts.a ?? { script: () => answer("from A") }),
    b: OpenAiServer.start(scripts.b ?? { script: () => answer("from B") }),
    c: OpenAiServer.start(scripts.c ?? { script: () => answer("from C") })
  })

/** Streams one request through the routed model and collects every chunk. */
const ask = (text: string, options?: LanguageModel.ChatOptions) =>
  Effect.flatMap(LanguageModel.LanguageModel, (model) =>
    Effect.map(Stream.runCollect(model.stream([Message.user(text)], undefined, options)), Chunk.toArray))

const askTier = (tier: QueryTier) => ask("Hello there", { tier })

const routeOf = (chunks: ReadonlyArray<ChatChunk>) => {
  const first = chunks[0]
  if (first?._tag !== "route") throw new Error(`the first chunk is not a route chunk: ${JSON.stringify(first)}`)
  return first
}

const textOf = (chunks: ReadonlyArray<ChatChunk>) =>
  chunks.flatMap((chunk) => chunk._tag === "text-delta" ? [chunk.delta] : []).join("")

const routingErrorOf = <A>(effect: Effect.Effect<A, LanguageModel.ModelError, LanguageModel.LanguageModel>) =>
  Effect.flatMap(Effect.either(effect), (result) =>
    Either.isLeft(result) && result.left._tag === "RoutingError"
      ? Effect.succeed(result.left as RoutingError)
      : Effect.dieMessage(`expected a RoutingError, got ${JSON.stringify(result)}`))

const modelsRequests = (server: OpenAiServer.OpenAiServer) =>
  server.requests.filter((request) => request.path === "/v1/models").length

describe("candidatesFor", () => {
  const mapping = { simple: "local", moderate: "mid", complex: "big", reasoning: "think" }

  it("puts the mapped provider first, then the others nearest tier first, the higher one first at equal distance", () => {
    expect(TierRouter.candidatesFor("moderate", mapping, undefined)).toEqual(["mid", "big", "local", "think"])
    expect(TierRouter.candidatesFor("simple", mapping, undefined)).toEqual(["local", "mid", "big", "think"])
    expect(TierRouter.candidatesFor("reasoning", mapping, undefined)).toEqual(["think", "big", "mid", "local"])
  })

  it("uses routing.fallbacks in their order instead of tier distance, and lists each provider once", () => {
    expect(TierRouter.candidatesFor("simple", mapping, ["think", "local", "mid"])).toEqual(["local", "think", "mid"])
    expect(TierRouter.candidatesFor("simple", { simple: "a", moderate: "a", complex: "b" }, undefined)).toEqual(["a", "b"])
  })
})

describe("TierRouter: routing by tier", () => {
  it.scoped("a forced tier goes to the provider its tier maps to, announced by a first route chunk", () =>
    Effect.gen(function*() {
      const servers = yield* threeServers()
      yield* Effect.gen(function*() {
        const simple = yield* askTier("simple")
        const complex = yield* askTier("complex")
        const reasoning = yield* askTier("reasoning")
        expect(routeOf(simple)).toEqual({
          _tag: "route",
          tier: "simple",
          provider: "ollama",
          score: 1,
          confidence: 1,
          signals: ["forced"],
          forced: true,
          fallbacksTried: []
        })
        expect(textOf(simple)).toBe("from A")
        expect([routeOf(complex).provider, textOf(complex)]).toEqual(["litellm", "from B"])
        expect([routeOf(reasoning).provider, textOf(reasoning)]).toEqual(["openai", "from C"])
        expect(simple.filter((chunk) => chunk._tag === "route")).toHaveLength(1)
      }).pipe(Effect.provide(kernel(routingConfig({ a: servers.a.url, b: servers.b.url, c: servers.c.url }), withKey)))
      expect(servers.a.completions.map((request) => request.body.model)).toEqual(["model-a"])
      expect(servers.b.completions.map((request) => request.body.model)).toEqual(["model-b"])
      expect(servers.c.completions.map((request) => request.body.model)).toEqual(["model-c"])
      expect(servers.c.completions[0]!.headers.authorization).toBe(`Bearer ${OPENAI_KEY}`)
      expect(servers.a.completions[0]!.headers.authorization).toBeUndefined()
    }))

  it.scoped("without a forced tier the classifier decides: a greeting goes to simple, a proof to reasoning", () =>
    Effect.gen(function*() {
      const servers = yield* threeServers()
      yield* Effect.gen(function*() {
        const greeting = routeOf(yield* ask("hi"))
        const proof = routeOf(yield* ask("Prove step by step that the square root of 2 is irrational."))
        expect(greeting).toMatchObject({ tier: "simple", provider: "ollama", forced: false })
        expect(greeting.signals).toContain("greeting:hi")
        expect(proof).toMatchObject({ tier: "reasoning", provider: "openai", forced: false })
        expect(proof.signals).toContain("proof:prove")
        expect(proof.score).toBeGreaterThan(greeting.score)
      }).pipe(Effect.provide(kernel(routingConfig({ a: servers.a.url, b: servers.b.url, c: servers.c.url }), withKey)))
      expect(servers.a.completions).toHaveLength(1)
      expect(servers.b.completions).toHaveLength(0)
      expect(servers.c.completions).toHaveLength(1)
    }))

  it.scoped("forTier pins every request to one tier, whatever the classifier would say", () =>
    Effect.gen(function*() {
      const servers = yield* threeServers()
      const pinned = TierRouter.forTier("reasoning").pipe(
        Layer.provide(kernel(routingConfig({ a: servers.a.url, b: servers.b.url, c: servers.c.url }), withKey))
      )
      const route = routeOf(yield* ask("hi").pipe(Effect.provide(pinned)))
      expect(route).toMatchObject({ tier: "reasoning", provider: "openai", forced: true })
      expect(servers.a.completions).toHaveLength(0)
      expect(servers.c.completions).toHaveLength(1)
    }))

  it.scoped("a change of routing.tierMapping or of a provider's baseUrl applies to the very next request", () =>
    Effect.gen(function*() {
      const servers = yield* threeServers()
      const moved = yield* OpenAiServer.start({ script: () => answer("from A2") })
      yield* Effect.gen(function*() {
        const config = yield* ConfigManager.ConfigManager
        expect(routeOf(yield* askTier("simple")).provider).toBe("ollama")
        yield* config.set("providers.ollama.baseUrl", moved.url)
        expect(textOf(yield* askTier("simple"))).toBe("from A2")
        yield* config.set("routing.tierMapping.simple", "litellm")
        const next = yield* askTier("simple")
        expect([routeOf(next).provider, textOf(next)]).toEqual(["litellm", "from B"])
      }).pipe(Effect.provide(kernel(routingConfig({ a: servers.a.url, b: servers.b.url, c: servers.c.url }), withKey)))
      expect(servers.a.completions).toHaveLength(1)
      expect(moved.completions).toHaveLength(1)
      expect(servers.b.completions).toHaveLength(1)
    }))
})

describe("TierRouter: fallback", () => {
  it.scoped("a provider answering 503 hands the request to the next provider after one attempt, not after its retries", () =>
    Effect.gen(function*() {
      const servers = yield* threeServers({ a: { script: () => unavailable } })
      const chunks = yield* askTier("simple").pipe(
        Effect.provide(kernel(routingConfig({ a: servers.a.url, b: servers.b.url, c: servers.c.url }), withKey))
      )
      const route = routeOf(chunks)
      expect(route.provider).toBe("litellm")
      expect(route.fallbacksTried).toHaveLength(1)
      expect(route.fallbacksTried[0]!.provider).toBe("ollama")
      expect(route.fallbacksTried[0]!.reason).toMatch(/^ServerError: .*503/)
      expect(textOf(chunks)).toBe("from B")
      expect(servers.a.completions).toHaveLength(1)
    }))

  it.scoped("the last provider left keeps its own retries", () =>
    Effect.gen(function*() {
      let calls = 0
      const servers = yield* threeServers({ a: { script: () => ++calls < providerAttempts ? unavailable : answer("from A") } })
      const chunks = yield* askTier("simple").pipe(
        Effect.provide(kernel({
          plugins: { enabled: ["ollama"] },
          routing: { tierMapping: { simple: "ollama", moderate: "ollama", complex: "ollama", reasoning: "ollama" } },
          providers: { ollama: { baseUrl: servers.a.url, model: "model-a" } }
        }, withKey))
      )
      expect([routeOf(chunks).provider, textOf(chunks)]).toEqual(["ollama", "from A"])
      expect(servers.a.completions).toHaveLength(providerAttempts)
    }))

  it.scoped("a provider that is down is skipped after its health check, and the next one serves", () =>
    Effect.gen(function*() {
      const down = yield* closedPortUrl
      const servers = yield* threeServers()
      const chunks = yield* askTier("simple").pipe(
        Effect.provide(kernel(routingConfig({ a: down, b: servers.b.url, c: servers.c.url }), withKey))
      )
      expect(routeOf(chunks).provider).toBe("litellm")
      expect(routeOf(chunks).fallbacksTried).toEqual([{ provider: "ollama", reason: "unavailable (health check failed)" }])
      expect(textOf(chunks)).toBe("from B")
    }))

  it.scoped("a provider answering 401 hands the request on, and the reason never shows the key", () =>
    Effect.gen(function*() {
      // Some servers quote the key they refused.
      const refused = OpenAiServer.status(401, { error: { message: `Incorrect API key provided: ${OPENAI_KEY}` } })
      const servers = yield* threeServers({ c: { script: () => refused } })
      const chunks = yield* askTier("reasoning").pipe(
        Effect.provide(kernel(routingConfig({ a: servers.a.url, b: servers.b.url, c: servers.c.url }), withKey))
      )
      const route = routeOf(chunks)
      expect(route.provider).toBe("litellm")
      expect(route.fallbacksTried[0]!.provider).toBe("openai")
      expect(route.fallbacksTried[0]!.reason).toMatch(/^Unauthorized: .*401/)
      expect(JSON.stringify(chunks)).not.toContain(OPENAI_KEY)
      // Unauthorized is not retried by the provider.
      expect(servers.c.completions).toHaveLength(1)
    }))

  it.scoped("routing.fallbacks.<tier>, when set, decides the order instead of tier distance", () =>
    Effect.gen(function*() {
      const down = yield* closedPortUrl
      const servers = yield* threeServers()
      const config = routingConfig({ a: down, b: servers.b.url, c: servers.c.url })
      const chunks = yield* askTier("simple").pipe(
        Effect.provide(kernel({ ...config, routing: { ...config.routing, fallbacks: { simple: ["openai", "litellm"] } } }, withKey))
      )
      // By distance litellm (complex) would come before openai (reasoning).
      expect(routeOf(chunks).provider).toBe("openai")
      expect(servers.b.completions).toHaveLength(0)
      expect(servers.c.completions).toHaveLength(1)
    }))

  it.scoped("once a chunk reached the caller a failure ends the stream, and no other provider is asked", () =>
    Effect.gen(function*() {
      const servers = yield* threeServers({
        a: { script: [OpenAiServer.sse(OpenAiServer.textChunks(["Hel", "lo", " world"]), { resetAfter: 3, eventDelayMs: 40 })] }
      })
      const received: Array<ChatChunk> = []
      const result = yield* Effect.flatMap(LanguageModel.LanguageModel, (model) =>
        model.stream([Message.user("hi")], undefined, { tier: "simple" }).pipe(
          Stream.runForEach((chunk) => Effect.sync(() => received.push(chunk))),
          Effect.either
        )).pipe(Effect.provide(kernel(routingConfig({ a: servers.a.url, b: servers.b.url, c: servers.c.url }), withKey)))
      expect(routeOf(received).provider).toBe("ollama")
      expect(textOf(received)).toBe("Hello")
      expect(Either.isLeft(result)).toBe(true)
      const error = Either.getLeft(result).pipe(Option.getOrThrow)
      expect(error).toMatchObject({ _tag: "ProviderError", providerId: "ollama", reason: "Network" })
      expect(servers.a.completions).toHaveLength(1)
      expect(servers.b.completions).toHaveLength(0)
      expect(servers.c.completions).toHaveLength(0)
    }))

  it.scoped("when nothing can serve, RoutingError NoProviderAvailable lists each provider tried and why", () =>
    Effect.gen(function*() {
      const down = yield* closedPortUrl
      const servers = yield* threeServers({ b: { script: () => unauthorized }, c: { script: () => unavailable } })
      const error = yield* routingErrorOf(askTier("simple")).pipe(
        Effect.provide(kernel(routingConfig({ a: down, b: servers.b.url, c: servers.c.url }), withKey))
      )
      expect(error.reason).toBe("NoProviderAvailable")
      expect(error.tier).toBe("simple")
      expect(error.attempts.map((attempt) => attempt.provider)).toEqual(["ollama", "litellm", "openai"])
      expect(error.attempts[0]!.reason).toBe("unavailable (health check failed)")
      expect(error.attempts[1]!.reason).toMatch(/^Unauthorized: /)
      expect(error.attempts[2]!.reason).toMatch(/^ServerError: /)
      for (const provider of ["ollama", "litellm", "openai"]) expect(error.message).toContain(provider)
      expect(JSON.stringify(error)).not.toContain(OPENAI_KEY)
      expect(error.message).not.toContain(OPENAI_KEY)
    }))
})

describe("TierRouter: passive health", () => {
  it.scoped("after most of 3 calls failed the provider is skipped with no request, and one probe after the cooldown decides", () =>
    Effect.gen(function*() {
      let healthy = false
      const servers = yield* threeServers({ a: { script: () => healthy ? answer("from A") : unavailable } })
      yield* Effect.gen(function*() {
        for (let i = 0; i < 3; i++) expect(routeOf(yield* askTier("simple")).provider).toBe("litellm")
        expect(servers.a.completions).toHaveLength(3)

        const skipped = routeOf(yield* askTier("simple"))
        expect(skipped.provider).toBe("litellm")
        expect(skipped.fallbacksTried).toEqual([{ provider: "ollama", reason: "in cooldown after recent failures" }])
        yield* TestClock.adjust("29 seconds")
        expect(routeOf(yield* askTier("simple")).provider).toBe("litellm")
        expect(servers.a.completions).toHaveLength(3)

        healthy = true
        yield* TestClock.adjust("1 second")
        const probe = yield* askTier("simple")
        expect([routeOf(probe).provider, textOf(probe)]).toEqual(["ollama", "from A"])
        expect(servers.a.completions).toHaveLength(4)
        expect(routeOf(yield* askTier("simple")).provider).toBe("ollama")
      }).pipe(Effect.provide(kernel(routingConfig({ a: servers.a.url, b: servers.b.url, c: servers.c.url }), withKey)))
    }))

  it.scoped("401 starts a cooldown at once; a failed probe starts another, a good one ends it", () =>
    Effect.gen(function*() {
      let healthy = false
      const servers = yield* threeServers({ a: { script: () => healthy ? answer("from A") : unauthorized } })
      yield* Effect.gen(function*() {
        expect(routeOf(yield* askTier("simple")).provider).toBe("litellm")
        expect(routeOf(yield* askTier("simple")).fallbacksTried[0]!.reason).toBe("in cooldown after recent failures")
        expect(servers.a.completions).toHaveLength(1)

        yield* TestClock.adjust("30 seconds")
        const failedProbe = routeOf(yield* askTier("simple"))
        expect(failedProbe.provider).toBe("litellm")
        expect(failedProbe.fallbacksTried[0]!.reason).toMatch(/^Unauthorized/)
        expect(servers.a.completions).toHaveLength(2)
        expect(routeOf(yield* askTier("simple")).fallbacksTried[0]!.reason).toBe("in cooldown after recent failures")
        expect(servers.a.completions).toHaveLength(2)

        healthy = true
        yield* TestClock.adjust("30 seconds")
        expect(routeOf(yield* askTier("simple")).provider).toBe("ollama")
        expect(routeOf(yield* askTier("simple")).provider).toBe("ollama")
        expect(servers.a.completions).toHaveLength(4)
      }).pipe(Effect.provide(kernel(routingConfig({ a: servers.a.url, b: servers.b.url, c: servers.c.url }), withKey)))
    }))

  it.scoped("a probe whose caller stops reading early does not leave the provider in cooldown", () =>
    Effect.gen(function*() {
      let healthy = false
      const servers = yield* threeServers({
        a: { script: () => healthy ? OpenAiServer.sse(OpenAiServer.textChunks(["one", "two", "three"])) : unauthorized }
      })
      yield* Effect.gen(function*() {
        const model = yield* LanguageModel.LanguageModel
        expect(routeOf(yield* askTier("simple")).provider).toBe("litellm")
        healthy = true
        yield* TestClock.adjust("30 seconds")
        const head = yield* Stream.runCollect(
          Stream.take(model.stream([Message.user("hi")], undefined, { tier: "simple" }), 2)
        )
        expect(routeOf(Chunk.toArray(head)).provider).toBe("ollama")
        expect(routeOf(yield* askTier("simple")).provider).toBe("ollama")
      }).pipe(Effect.provide(kernel(routingConfig({ a: servers.a.url, b: servers.b.url, c: servers.c.url }), withKey)))
    }))

  it.scoped("an answer cut by a content filter mid-stream does not put the provider in cooldown", () =>
    Effect.gen(function*() {
      const filtered = OpenAiServer.sse([
        ...OpenAiServer.textChunks(["Hel"], { finishReason: null }),
        OpenAiServer.data({ error: { message: "The answer was filtered.", code: "content_filter" } })
      ], { eventDelayMs: 30 })
      const servers = yield* threeServers({ a: { script: [filtered, answer("from A")] } })
      yield* Effect.gen(function*() {
        const received: Array<ChatChunk> = []
        const failed = yield* Effect.flatMap(LanguageModel.LanguageModel, (model) =>
          model.stream([Message.user("hi")], undefined, { tier: "simple" }).pipe(
            Stream.runForEach((chunk) => Effect.sync(() => received.push(chunk))),
            Effect.either
          ))
        expect(textOf(received)).toBe("Hel")
        expect(Either.getLeft(failed).pipe(Option.getOrThrow)).toMatchObject({ reason: "ContentFiltered", providerId: "ollama" })
        const next = yield* askTier("simple")
        expect([routeOf(next).provider, routeOf(next).fallbacksTried, textOf(next)]).toEqual(["ollama", [], "from A"])
      }).pipe(Effect.provide(kernel(routingConfig({ a: servers.a.url, b: servers.b.url, c: servers.c.url }), withKey)))
    }))

  it.scoped("isAvailable reaches the server at most once per TTL (routing.healthTtlMs) across 1,000 requests", () =>
    Effect.gen(function*() {
      const server = yield* OpenAiServer.start()
      const config = {
        plugins: { enabled: ["quick"] },
        routing: { tierMapping: { simple: "quick" }, healthTtlMs: 10_000 },
        providers: { quick: { baseUrl: server.url } }
      }
      yield* Effect.gen(function*() {
        const served = yield* Effect.forEach(
          Array.from({ length: 1000 }, (_, i) => i),
          () => Effect.map(askTier("simple"), (chunks) => routeOf(chunks).provider),
          { concurrency: 10 }
        )
        expect(served.every((provider) => provider === "quick")).toBe(true)
        expect(modelsRequests(server)).toBe(1)

        yield* TestClock.adjust("9999 millis")
        yield* askTier("simple")
        expect(modelsRequests(server)).toBe(1)
        yield* TestClock.adjust("1 milli")
        yield* askTier("simple")
        expect(modelsRequests(server)).toBe(2)
      }).pipe(Effect.provide(kernel(config, { plugins: [...builtins, quickAnswers] })))
    }))
})

describe("TierRouter: pairing and plugins", () => {
  const context = ExecutionContext.make({ contextId: "ctx-1", taskId: "task-1", agentId: "agent" })

  const runTool = (name: string, args: Record<string, unknown>) =>
    Effect.gen(function*() {
      // A person pairing at a terminal (scripts/pair.ts): the tools that may set a base URL.
      const secrets = yield* SecretsManager.SecretsManager
      const config = yield* ConfigManager.ConfigManager
      const toolbox = yield* Toolbox.make([Option.getOrThrow(operatorPairingTools(name.split("_")[0]!, secrets, config))])
      const events = yield* Stream.runCollect(toolbox.execute({ id: `call-${name}`, name, arguments: args }, context))
      return Chunk.toArray(events) as ReadonlyArray<ToolEvent>
    })

  it.scoped("openai_pair then the next request goes to the paired provider, and unpair routes back, with no restart", () =>
    Effect.gen(function*() {
      const servers = yield* threeServers()
      const config = {
        plugins: { enabled: ["ollama", "litellm"] },
        routing: { tierMapping: { simple: "ollama", moderate: "ollama", complex: "litellm", reasoning: "litellm" } },
        providers: { ollama: { baseUrl: servers.a.url }, litellm: { baseUrl: servers.b.url } }
      }
      yield* Effect.gen(function*() {
        const secrets = yield* SecretsManager.SecretsManager
        expect(routeOf(yield* askTier("reasoning")).provider).toBe("litellm")

        const pairing = yield* runTool("openai_pair", { apiKey: OPENAI_KEY, baseUrl: servers.c.url, model: "gpt-paired" })
        expect(pairing.map((event) => event.type)).toEqual(["tool-start", "tool-complete"])
        const start = pairing[0]!
        expect(start.type === "tool-start" && start.arguments).toEqual({
          apiKey: "<redacted>",
          baseUrl: servers.c.url,
          model: "gpt-paired"
        })
        const complete = pairing[1]!
        expect(complete.type === "tool-complete" && typeof complete.result).toBe("string")
        expect(JSON.stringify(pairing)).not.toContain(OPENAI_KEY)
        const stored = yield* secrets.retrieve("provider.openai.apiKey")
        expect(Option.map(stored, Redacted.value)).toEqual(Option.some(OPENAI_KEY))

        const paired = yield* askTier("reasoning")
        expect([routeOf(paired).provider, textOf(paired)]).toEqual(["openai", "from C"])
        expect(routeOf(yield* askTier("complex")).provider).toBe("openai")
        expect(servers.c.completions.map((request) => request.body.model)).toEqual(["gpt-paired", "gpt-paired"])
        expect(servers.c.completions[0]!.headers.authorization).toBe(`Bearer ${OPENAI_KEY}`)

        const unpairing = yield* runTool("openai_unpair", { deleteKey: true })
        expect(unpairing.map((event) => event.type)).toEqual(["tool-start", "tool-complete"])
        expect(routeOf(yield* askTier("reasoning")).provider).toBe("ollama")
        expect(servers.c.completions).toHaveLength(2)
        expect(yield* secrets.check("provider.openai.apiKey")).toBe(false)
      }).pipe(Effect.provide(kernel(config)))
    }))

  it.scoped("enabling a plugin in the config applies to the very next request, even after it was asked for while disabled", () =>
    Effect.gen(function*() {
      const servers = yield* threeServers()
      const config = {
        plugins: { enabled: ["ollama"] },
        routing: { tierMapping: { simple: "ollama", moderate: "ollama", complex: "ollama", reasoning: "ollama" } },
        providers: { ollama: { baseUrl: servers.a.url }, litellm: { baseUrl: servers.b.url } }
      }
      yield* Effect.gen(function*() {
        const manager = yield* ConfigManager.ConfigManager
        yield* manager.set("routing.tierMapping.complex", "litellm")
        const before = routeOf(yield* askTier("complex"))
        expect(before.provider).toBe("ollama")
        expect(before.fallbacksTried[0]!.reason).toMatch(/^not loaded: No enabled plugin provides "litellm"/)
        yield* manager.set("plugins.enabled", ["ollama", "litellm"])
        const after = routeOf(yield* askTier("complex"))
        expect(after.provider).toBe("litellm")
        expect(after.fallbacksTried).toEqual([])
      }).pipe(Effect.provide(kernel(config)))
    }))

  it.scoped("a provider whose creation failed is created again on the next request, not kept failed", () =>
    Effect.gen(function*() {
      const servers = yield* threeServers()
      let creations = 0
      const flaky: PluginRegistry.ProviderPlugin = {
        id: "flaky",
        name: "Flaky",
        description: "Fails to start once.",
        type: "provider",
        version: "0.0.0",
        createProvider: () =>
          Effect.suspend(() =>
            ++creations === 1
              ? Effect.fail(new PluginError({ reason: "LoadFailed", pluginId: "flaky", message: "still starting" }))
              : Effect.succeed(LanguageModel.make({
                id: "flaky",
                name: "Flaky",
                stream: () => Stream.fromIterable<ChatChunk>([{ _tag: "text-delta", delta: "flaky" }])
              }))
          )
      }
      const config = {
        plugins: { enabled: ["ollama", "flaky"] },
        routing: { tierMapping: { simple: "flaky", moderate: "ollama", complex: "ollama", reasoning: "ollama" } },
        providers: { ollama: { baseUrl: servers.a.url } }
      }
      yield* Effect.gen(function*() {
        const first = routeOf(yield* askTier("simple"))
        expect(first.provider).toBe("ollama")
        expect(first.fallbacksTried).toEqual([{ provider: "flaky", reason: "not loaded: still starting" }])
        const second = yield* askTier("simple")
        expect([routeOf(second).provider, textOf(second)]).toEqual(["flaky", "flaky"])
        expect(creations).toBe(2)
      }).pipe(Effect.provide(kernel(config, { plugins: [...builtins, flaky] })))
    }))

  it.scoped("a plugin that fails to load is named in the route's reasons while the others still serve", () =>
    Effect.gen(function*() {
      const servers = yield* threeServers()
      const missing = "@example/missing-provider-plugin"
      const config = {
        plugins: { enabled: ["ollama", missing, "malformed-plugin", "litellm"] },
        routing: { tierMapping: { simple: "ollama", moderate: "ollama", complex: missing, reasoning: "litellm" } },
        providers: { ollama: { baseUrl: servers.a.url }, litellm: { baseUrl: servers.b.url } }
      }
      const loader: PluginRegistry.ModuleLoader = (specifier) =>
        specifier === "malformed-plugin" ? Promise.resolve({ default: { id: "malformed" } }) : import(specifier)
      yield* Effect.gen(function*() {
        const registry = yield* PluginRegistry.PluginRegistry
        const failures: ReadonlyArray<PluginError> = yield* registry.failures
        expect(failures.map((failure) => [failure.pluginId, failure.reason])).toEqual([
          [missing, "NotFound"],
          ["malformed-plugin", "Invalid"]
        ])
        expect((yield* registry.enabled).map((plugin) => plugin.id)).toEqual(["ollama", "litellm"])

        const route = routeOf(yield* askTier("complex"))
        expect(route.provider).toBe("litellm")
        expect(route.fallbacksTried).toHaveLength(1)
        expect(route.fallbacksTried[0]!.provider).toBe(missing)
        expect(route.fallbacksTried[0]!.reason).toContain(`Plugin module "${missing}" could not be imported`)
        expect(routeOf(yield* askTier("simple")).provider).toBe("ollama")
      }).pipe(Effect.provide(kernel(config, { loader })))
    }))
})

/**
 * The same request read the way the agent reads it (`Resilience.runForEachChunk`), which takes
 * the router's direct path instead of its stream.
 */
const askDirect = (text: string, options?: LanguageModel.ChatOptions) =>
  Effect.flatMap(LanguageModel.LanguageModel, (model) => {
    const chunks: Array<ChatChunk> = []
    return Effect.as(
      Resilience.runForEachChunk(model, [Message.user(text)], undefined, options, (chunk) =>
        Effect.sync(() => chunks.push(...chunk))),
      chunks
    )
  })

describe("TierRouter: read directly, as the agent reads it", () => {
  it.scoped("the routed model and forTier offer a direct read, which gives the chunks the stream gives", () =>
    Effect.gen(function*() {
      const servers = yield* threeServers()
      const live = kernel(routingConfig({ a: servers.a.url, b: servers.b.url, c: servers.c.url }), withKey)
      yield* Effect.gen(function*() {
        expect(Resilience.pullSourceOf(yield* LanguageModel.LanguageModel)).toBeDefined()
        const direct = yield* askDirect("Hello there", { tier: "complex" })
        const streamed = yield* ask("Hello there", { tier: "complex" })
        expect(direct).toEqual(streamed)
        expect([routeOf(direct).provider, textOf(direct)]).toEqual(["litellm", "from B"])
        expect(direct.at(-1)).toMatchObject({ _tag: "finish" })
      }).pipe(Effect.provide(live))
      const pinned = yield* Effect.gen(function*() {
        expect(Resilience.pullSourceOf(yield* LanguageModel.LanguageModel)).toBeDefined()
        return routeOf(yield* askDirect("hi"))
      }).pipe(Effect.provide(TierRouter.forTier("reasoning").pipe(Layer.provide(live))))
      expect(pinned).toMatchObject({ tier: "reasoning", provider: "openai", forced: true })
      expect(servers.b.completions).toHaveLength(2)
      expect(servers.c.completions).toHaveLength(1)
    }))

  it.scoped("a 503 hands the request to the next provider, and a 401 puts the provider in cooldown", () =>
    Effect.gen(function*() {
      const servers = yield* threeServers({ a: { script: () => unavailable }, b: { script: () => unauthorized } })
      yield* Effect.gen(function*() {
        const first = yield* askDirect("Hello there", { tier: "simple" })
        expect(routeOf(first).provider).toBe("openai")
        expect(routeOf(first).fallbacksTried.map((attempt) => attempt.provider)).toEqual(["ollama", "litellm"])
        expect(routeOf(first).fallbacksTried[1]!.reason).toMatch(/^Unauthorized/)
        expect(textOf(first)).toBe("from C")
        const second = routeOf(yield* askDirect("Hello there", { tier: "complex" }))
        expect(second.provider).toBe("openai")
        expect(second.fallbacksTried[0]).toEqual({ provider: "litellm", reason: "in cooldown after recent failures" })
      }).pipe(Effect.provide(kernel(routingConfig({ a: servers.a.url, b: servers.b.url, c: servers.c.url }), withKey)))
      // For "complex" the nearest tier up (openai) comes before the one down (ollama).
      expect(servers.a.completions).toHaveLength(1)
      expect(servers.b.completions).toHaveLength(1)
      expect(servers.c.completions).toHaveLength(2)
    }))

  it.scoped("once a chunk reached the caller a failure ends the read with it, and no other provider is asked", () =>
    Effect.gen(function*() {
      const servers = yield* threeServers({
        a: { script: [OpenAiServer.sse(OpenAiServer.textChunks(["Hel", "lo", " world"]), { resetAfter: 3, eventDelayMs: 40 })] }
      })
      const received: Array<ChatChunk> = []
      const result = yield* Effect.flatMap(LanguageModel.LanguageModel, (model) =>
        Resilience.runForEachChunk(model, [Message.user("hi")], undefined, { tier: "simple" }, (chunk) =>
          Effect.sync(() => received.push(...chunk))).pipe(Effect.either)).pipe(
          Effect.provide(kernel(routingConfig({ a: servers.a.url, b: servers.b.url, c: servers.c.url }), withKey))
        )
      expect(routeOf(received).provider).toBe("ollama")
      expect(textOf(received)).toBe("Hello")
      expect(Either.getLeft(result).pipe(Option.getOrThrow)).toMatchObject({
        _tag: "ProviderError",
        providerId: "ollama",
        reason: "Network"
      })
      expect(servers.b.completions).toHaveLength(0)
      expect(servers.c.completions).toHaveLength(0)
    }))

  it.scoped("a reader that stops after the first chunk releases the probe it held: the next request probes again", () =>
    Effect.gen(function*() {
      let healthy = false
      const servers = yield* threeServers({
        a: { script: () => healthy ? answer("from A") : unavailable }
      })
      yield* Effect.gen(function*() {
        // Three failed calls put ollama in cooldown (most of 3 calls failed).
        for (let i = 0; i < 3; i++) expect(routeOf(yield* askDirect("Hello there", { tier: "simple" })).provider).toBe("litellm")
        expect(routeOf(yield* askDirect("Hello there", { tier: "simple" })).fallbacksTried[0]!.reason).toBe(
          "in cooldown after recent failures"
        )
        healthy = true
        yield* TestClock.adjust("30 seconds")
        // The probe answers, but its reader stops at the route chunk: undecided, the slot is freed.
        const stopped = yield* Effect.flatMap(LanguageModel.LanguageModel, (model) =>
          Resilience.runForEachChunk(model, [Message.user("Hello there")], undefined, { tier: "simple" }, () =>
            Effect.fail("stop" as const))).pipe(Effect.flip)
        expect(stopped).toBe("stop")
        expect(routeOf(yield* askDirect("Hello there", { tier: "simple" })).provider).toBe("ollama")
      }).pipe(Effect.provide(kernel(routingConfig({ a: servers.a.url, b: servers.b.url, c: servers.c.url }), withKey)))
      expect(servers.a.completions).toHaveLength(5)
    }))
})
