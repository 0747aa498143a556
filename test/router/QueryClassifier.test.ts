import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as ConfigManager from "../../src/config/ConfigManager.js"
import { ConfigError } from "../../src/domain/Errors.js"
import * as Message from "../../src/domain/Message.js"
import {
  classifyMessages,
  classifyQuery,
  configKey,
  decodeSettings,
  defaultThresholds,
  defaultWeights,
  layer,
  layerConfig,
  layerWith,
  QueryClassifier
} from "../../src/router/QueryClassifier.js"
import { classifierEvalSet, classifierHoldoutSet, evaluate, formatReport } from "./classifier-eval.js"

const tierOf = (text: string) => classifyQuery(text).tier
const hasSignal = (text: string, prefix: string) => classifyQuery(text).signals.some((s) => s.startsWith(prefix))

describe("evaluation set", () => {
  it("has at least 120 prompts, the same number in each tier", () => {
    const counts = new Map<string, number>()
    for (const item of classifierEvalSet) counts.set(item.tier, (counts.get(item.tier) ?? 0) + 1)
    expect(classifierEvalSet.length).toBeGreaterThanOrEqual(120)
    expect([...counts.keys()].sort()).toEqual(["complex", "moderate", "reasoning", "simple"])
    expect(new Set(counts.values()).size).toBe(1)
  })

  it("is classified at least 85% acceptably and at most 3% two or more tiers off", () => {
    const report = evaluate(tierOf)
    expect(report.acceptable / report.total, formatReport(report)).toBeGreaterThanOrEqual(0.85)
    expect(report.farOff / report.total, formatReport(report)).toBeLessThanOrEqual(0.03)
  })

  it("held-out prompts, never tuned against, are classified at least 80% acceptably", () => {
    const report = evaluate(tierOf, classifierHoldoutSet)
    expect(report.acceptable / report.total, formatReport(report)).toBeGreaterThanOrEqual(0.8)
  })
})

describe("classifyQuery: words match on word boundaries", () => {
  it('"capital" does not count as "api", but "API" does', () => {
    expect(hasSignal("What's the capital of Peru?", "code-terms:api")).toBe(false)
    expect(hasSignal("Which API returns the user's orders?", "code-terms:api")).toBe(true)
  })

  it('"think" and "history" do not count as "hi", but "hi" does', () => {
    expect(hasSignal("I think the history of Rome is long", "greeting")).toBe(false)
    expect(hasSignal("hi", "greeting:hi")).toBe(true)
    expect(hasSignal("hi, are you there?", "greeting:hi")).toBe(true)
  })

  it('"improve", "approve" and "proofread" do not count as proof words', () => {
    expect(hasSignal("Please improve, approve and proofread my essay", "proof")).toBe(false)
  })

  it("a stem covers its inflections and case does not matter", () => {
    expect(classifyQuery("The IMPLEMENTATION is slow").signals).toContain("code-task:implement")
    expect(classifyQuery("Prove it").signals).toContain("proof:prove")
  })

  it("a phrase matches across any run of whitespace", () => {
    expect(classifyQuery("go step\n  by \t step please").signals).toContain("step-by-step:step by step")
  })
})

describe("classifyQuery: outcomes", () => {
  it("keeps trick cases apart: capital lookup and greeting are simple, step-by-step thinking is reasoning", () => {
    expect(tierOf("What's the capital of France?")).toBe("simple")
    expect(tierOf("hi")).toBe("simple")
    expect(tierOf("think step by step about whether 91 is a prime number")).toBe("reasoning")
  })

  it("reports a confidence between 0.5 and 1, higher far from the thresholds", () => {
    const near = classifyQuery("Explain the rules of castling in chess.")
    const far = classifyQuery("Prove by induction that the sum of the first n odd integers is n^2, step by step.")
    for (const c of [near, far]) {
      expect(c.confidence).toBeGreaterThanOrEqual(0.5)
      expect(c.confidence).toBeLessThanOrEqual(1)
    }
    expect(far.confidence).toBeGreaterThan(near.confidence)
  })

  it("reads the shape of the text: code blocks, stack traces, lists and math notation", () => {
    expect(classifyQuery("Fix this:\n```ts\nconst x = 1\n```").signals).toContain("code-block")
    expect(classifyQuery("It fails:\nTypeError: x is undefined\n    at main (app.js:3:9)").signals).toContain(
      "stack-trace"
    )
    expect(classifyQuery("Do this:\n1. fetch the data\n2. clean it\n3. plot it").signals).toContain("multi-step")
    expect(classifyQuery("Solve x^2 = 9").signals).toContain("math-notation")
  })
})

describe("classifyQuery: settings", () => {
  const prompt = "Implement a rate limiter middleware for Express using a token bucket stored in Redis."

  it("a raised complex threshold moves a complex prompt down to moderate", () => {
    expect(classifyQuery(prompt).tier).toBe("complex")
    expect(classifyQuery(prompt, { thresholds: { complex: 50 } }).tier).toBe("moderate")
  })

  it("raising the weight of a signal matched once raises the score by the same amount", () => {
    const base = classifyQuery(prompt)
    expect(base.signals).toContain("code-terms:express")
    const weighted = classifyQuery(prompt, { weights: { "code-terms": defaultWeights["code-terms"]! + 1 } })
    expect(weighted.score - base.score).toBeCloseTo(1, 10)
  })

  it("a zero proof weight takes a proof request out of the reasoning tier", () => {
    const proof = "Prove that the halting problem is undecidable."
    expect(classifyQuery(proof).tier).toBe("reasoning")
    expect(classifyQuery(proof, { weights: { proof: 0 } }).tier).not.toBe("reasoning")
  })

  it("throws a RangeError for thresholds that do not rise", () => {
    expect(() => classifyQuery("hi", { thresholds: { moderate: 5, complex: 2 } })).toThrow(RangeError)
  })
})

describe("decodeSettings", () => {
  const failureOf = (raw: unknown) =>
    Option.getOrUndefined(Either.getLeft(Effect.runSync(Effect.either(decodeSettings(raw)))))

  it("accepts partial weights and thresholds", () => {
    const raw = { weights: { proof: 5 }, thresholds: { reasoning: 5 } }
    expect(Effect.runSync(decodeSettings(raw))).toEqual(raw)
  })

  it("rejects an unknown signal, an unknown field and thresholds that do not rise, naming the key", () => {
    for (const raw of [{ weights: { prooff: 1 } }, { treshold: {} }, { thresholds: { moderate: 4 } }]) {
      const error = failureOf(raw)
      expect(error).toBeInstanceOf(ConfigError)
      expect(error?.key).toBe(configKey)
    }
    expect(failureOf({ weights: { prooff: 1 } })?.message).toContain('unknown signal "prooff"')
  })
})

describe("QueryClassifier service", () => {
  const classify = (messages: ReadonlyArray<Message.Message>) =>
    Effect.flatMap(QueryClassifier, (classifier) => classifier.classify(messages))

  it.effect("scores the latest user message and never reads the system prompt", () =>
    Effect.gen(function*() {
      const withSystem = yield* classify([
        Message.system("Prove and derive everything rigorously; design a distributed architecture."),
        Message.user("hi")
      ])
      expect(withSystem).toEqual(classifyQuery("hi"))
      const later = yield* classify([
        Message.user("Prove that there are infinitely many primes."),
        Message.assistant("Suppose there were finitely many..."),
        Message.user("thanks!")
      ])
      expect(later.tier).toBe("simple")
    }).pipe(Effect.provide(layer)))

  it.effect("trailing tool results add the tool-results weight once; earlier tool messages add nothing", () =>
    Effect.gen(function*() {
      const call = { id: "c1", name: "weather", arguments: {} }
      const question = Message.user("What's the weather in Paris and in Rome?")
      const base = yield* classify([question])
      const pending = yield* classify([
        question,
        Message.assistant("", [call, { ...call, id: "c2" }]),
        Message.toolResult("c1", "weather", "Paris: 21°C, sunny"),
        Message.toolResult("c2", "weather", "Rome: 25°C, cloudy")
      ])
      expect(pending.signals).toContain("tool-results")
      expect(pending.score - base.score).toBeCloseTo(defaultWeights["tool-results"]!, 10)
      const answered = yield* classify([
        Message.user("What's the weather in Paris?"),
        Message.assistant("", [call]),
        Message.toolResult("c1", "weather", "21°C"),
        Message.assistant("It is 21°C."),
        question
      ])
      expect(answered.signals).not.toContain("tool-results")
    }).pipe(Effect.provide(layer)))

  it("a code block in a recent message marks a short follow-up as a code question", () => {
    const followUp = Message.user("why does it print undefined?")
    const alone = classifyMessages([followUp])
    const afterCode = classifyMessages([
      Message.user("Here is my code:\n```js\nconsole.log(user.name)\n```"),
      Message.assistant("It logs the name."),
      followUp
    ])
    expect(afterCode.signals).toContain("recent-code")
    expect(afterCode.score - alone.score).toBeCloseTo(defaultWeights["recent-code"]!, 10)
  })

  it("a conversation of ten messages or more adds long-conversation, nine do not", () => {
    const turns = (n: number) =>
      Array.from({ length: n }, (_, i) => (i % 2 === 0 ? Message.user("tell me more") : Message.assistant("ok")))
    expect(classifyMessages([Message.system("be brief"), ...turns(9)]).signals).not.toContain("long-conversation")
    expect(classifyMessages(turns(10)).signals).toContain("long-conversation")
  })

  it.effect("layerWith applies its settings", () =>
    Effect.gen(function*() {
      const result = yield* classify([Message.user("Explain the difference between TCP and UDP.")])
      expect(result.tier).toBe("simple")
    }).pipe(Effect.provide(layerWith({ thresholds: { moderate: 20, complex: 30 } }))))

  it.effect("layerWith fails with a ConfigError for invalid settings", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(layerWith({ thresholds: { moderate: 9 } })).pipe(Effect.scoped))
      expect(error).toBeInstanceOf(ConfigError)
    }))
})

describe("QueryClassifier.layerConfig", () => {
  const prompt = [Message.user("Implement a rate limiter middleware for Express using a token bucket stored in Redis.")]
  const withConfig = (initial: Record<string, unknown>) =>
    Layer.provideMerge(layerConfig, ConfigManager.layerMemory(initial))

  it.effect("reads routing.classifier at start and applies a change to the very next request", () =>
    Effect.gen(function*() {
      const config = yield* ConfigManager.ConfigManager
      const classifier = yield* QueryClassifier
      expect((yield* classifier.classify(prompt)).tier).toBe("moderate")
      yield* config.set(`${configKey}.thresholds.complex`, defaultThresholds.complex)
      expect((yield* classifier.classify(prompt)).tier).toBe("complex")
      yield* config.delete(configKey)
      expect((yield* classifier.classify(prompt)).tier).toBe("complex")
      yield* config.set("routing.classifier", { weights: { "code-task": 0, "architecture": 0, "code-terms": 0 } })
      expect((yield* classifier.classify(prompt)).tier).toBe("simple")
    }).pipe(Effect.provide(withConfig({ routing: { classifier: { thresholds: { complex: 50 } } } }))))

  it.effect("fails to build with a ConfigError when the stored settings are invalid", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Layer.build(withConfig({ routing: { classifier: { thresholds: { moderate: 5, complex: 2 } } } })).pipe(
          Effect.scoped
        )
      )
      expect(error).toBeInstanceOf(ConfigError)
      expect(error.key).toBe(configKey)
    }))

  it.effect("keeps the last valid settings and warns once when the settings become invalid", () => {
    const warnings: Array<string> = []
    const capture = Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ logLevel, message }) => {
        if (LogLevel.greaterThanEqual(logLevel, LogLevel.Warning)) warnings.push(String(message))
      })
    )
    return Effect.gen(function*() {
      const config = yield* ConfigManager.ConfigManager
      const classifier = yield* QueryClassifier
      yield* config.set(configKey, { thresholds: { complex: 50 } })
      expect((yield* classifier.classify(prompt)).tier).toBe("moderate")
      yield* config.set(configKey, { weights: { nonsense: 1 } })
      expect((yield* classifier.classify(prompt)).tier).toBe("moderate")
      expect((yield* classifier.classify(prompt)).tier).toBe("moderate")
      expect(warnings.filter((w) => w.includes("nonsense"))).toHaveLength(1)
    }).pipe(Effect.provide(withConfig({})), Effect.provide(capture))
  })
})
