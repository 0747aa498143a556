import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as Agent from "../../src/agent/Agent.js"
import { ConfigError } from "../../src/domain/Errors.js"
import * as Message from "../../src/domain/Message.js"
import type { ChatChunk, QueryTier } from "../../src/domain/Message.js"
import * as LanguageModel from "../../src/providers/LanguageModel.js"
import * as OpenAiCompatible from "../../src/providers/OpenAiCompatible.js"
import * as TierRouter from "../../src/router/TierRouter.js"
import * as Toolbox from "../../src/tools/Toolbox.js"
import * as OpenAiServer from "../peers/OpenAiServer.js"

const answer = (text: string) => OpenAiServer.sse(OpenAiServer.textChunks([text]))
const unavailable = OpenAiServer.status(503, { error: { message: "overloaded" } }, { "retry-after-ms": "0" })
const unauthorized = OpenAiServer.status(401, { error: { message: "bad key" } })

const provider = (id: string, url: string) => OpenAiCompatible.liteLLMProvider({ id, model: `${id}-model`, baseUrl: url })

const ask = (text: string, tier?: QueryTier) =>
  Effect.flatMap(LanguageModel.LanguageModel, (model) =>
    Effect.map(Stream.runCollect(model.stream([Message.user(text)], undefined, tier !== undefined ? { tier } : {})), Chunk.toArray))

const routeOf = (chunks: ReadonlyArray<ChatChunk>) => {
  const route = chunks[0]
  if (route?._tag !== "route") throw new Error(`no route chunk first: ${JSON.stringify(chunks)}`)
  return route
}

const textOf = (chunks: ReadonlyArray<ChatChunk>) =>
  chunks.map((chunk) => chunk._tag === "text-delta" ? chunk.delta : "").join("")

describe("TierRouter.fromLayers", () => {
  it.scoped("routes each tier to its Layer and names the provider by its id; the classifier decides when no tier is forced", () =>
    Effect.gen(function*() {
      const small = yield* OpenAiServer.start({ fallback: answer("from small") })
      const large = yield* OpenAiServer.start({ fallback: answer("from large") })
      const smallLayer = provider("small", small.url)
      const largeLayer = provider("large", large.url)
      const router = TierRouter.fromLayers({
        tiers: { simple: smallLayer, moderate: smallLayer, complex: largeLayer, reasoning: largeLayer }
      }).pipe(Layer.provide(NodeHttpClient.layerUndici))
      yield* Effect.gen(function*() {
        const forced = yield* ask("hello", "complex")
        expect([routeOf(forced).provider, routeOf(forced).tier, textOf(forced)]).toEqual(["large", "complex", "from large"])
        const greeting = yield* ask("Hi!")
        expect([routeOf(greeting).tier, routeOf(greeting).provider]).toEqual(["simple", "small"])
        const proof = yield* ask("Prove that the square root of two is irrational, then analyse each step of the proof rigorously.")
        expect(routeOf(proof).provider).toBe("large")
      }).pipe(Effect.provide(router))
      expect(small.completions.map((request) => request.body.model)).toEqual(["small-model"])
      expect(large.completions.map((request) => request.body.model)).toEqual(["large-model", "large-model"])
    }))

  it.scoped("a Layer given for several tiers is built once", () =>
    Effect.gen(function*() {
      const server = yield* OpenAiServer.start({ fallback: answer("ok") })
      let builds = 0
      const counted = Layer.effectDiscard(Effect.sync(() => builds++)).pipe(Layer.provideMerge(provider("one", server.url)))
      const router = TierRouter.fromLayers({ tiers: { simple: counted, moderate: counted, complex: counted } }).pipe(
        Layer.provide(NodeHttpClient.layerUndici)
      )
      yield* Effect.gen(function*() {
        yield* ask("a", "simple")
        yield* ask("b", "complex")
      }).pipe(Effect.provide(router))
      expect(builds).toBe(1)
    }))

  it.scoped("a provider answering 503 hands the request to the fallback tier's provider, and the route says why", () =>
    Effect.gen(function*() {
      const down = yield* OpenAiServer.start({ fallback: unavailable })
      const up = yield* OpenAiServer.start({ fallback: answer("from up") })
      const router = TierRouter.fromLayers({
        tiers: { simple: provider("up", up.url), complex: provider("down", down.url) },
        fallbacks: { complex: ["simple"] }
      }).pipe(Layer.provide(NodeHttpClient.layerUndici))
      const chunks = yield* ask("x", "complex").pipe(Effect.provide(router))
      const route = routeOf(chunks)
      expect([route.provider, textOf(chunks)]).toEqual(["up", "from up"])
      expect(route.fallbacksTried).toEqual([{ provider: "down", reason: expect.stringContaining("ServerError") }])
      // One attempt while another provider remains: failing over beats retrying a dead one.
      expect(down.completions).toHaveLength(1)
    }))

  it.scoped("a 401 starts a cooldown: the next request skips the provider without a request", () =>
    Effect.gen(function*() {
      const refused = yield* OpenAiServer.start({ fallback: unauthorized })
      const ok = yield* OpenAiServer.start({ fallback: answer("ok") })
      const router = TierRouter.fromLayers({
        tiers: { simple: provider("ok", ok.url), complex: provider("refused", refused.url) },
        cooldown: "1 minute"
      }).pipe(Layer.provide(NodeHttpClient.layerUndici))
      yield* Effect.gen(function*() {
        yield* ask("x", "complex")
        const second = yield* ask("y", "complex")
        expect(routeOf(second).fallbacksTried).toEqual([{ provider: "refused", reason: "in cooldown after recent failures" }])
      }).pipe(Effect.provide(router))
      expect(refused.completions).toHaveLength(1)
      expect(ok.completions).toHaveLength(2)
    }))

  it.scoped("a Layer that cannot be built fails the router's start with its error", () =>
    Effect.gen(function*() {
      const broken = Layer.fail(new ConfigError({ reason: "InvalidValue", key: "providers.x.baseUrl", message: "not a URL" }))
      const router = TierRouter.fromLayers({ tiers: { simple: broken } })
      const result = yield* Effect.either(Effect.provide(LanguageModel.LanguageModel, router))
      expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "ConfigError", key: "providers.x.baseUrl" })
    }))

  it.scoped("the agent emits the decision as a route-selected event", () =>
    Effect.gen(function*() {
      const server = yield* OpenAiServer.start({ fallback: answer("hello") })
      const router = TierRouter.fromLayers({ tiers: { simple: provider("local", server.url) } }).pipe(
        Layer.provide(NodeHttpClient.layerUndici)
      )
      const events = yield* Agent.run({ prompt: "Hi" }).pipe(
        Stream.runCollect,
        Effect.provide(Layer.merge(router, Toolbox.layer([])))
      )
      expect([...events].find((event) => event.type === "route-selected")).toMatchObject({ tier: "simple", provider: "local" })
    }))
})
