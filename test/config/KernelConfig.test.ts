import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as fc from "effect/FastCheck"
import * as KernelConfig from "../../src/config/KernelConfig.js"

const problemsOf = (document: unknown): string => {
  const result = KernelConfig.validate(document)
  if (Either.isRight(result)) throw new Error(`expected ${JSON.stringify(document)} to be rejected`)
  return result.left
}

describe("KernelConfig", () => {
  it("defaults are the documented ones", () => {
    expect(KernelConfig.defaults).toEqual({
      plugins: { enabled: ["ollama"] },
      routing: {
        defaultProvider: "ollama",
        tierMapping: { simple: "ollama", moderate: "ollama", complex: "ollama", reasoning: "ollama" },
        healthTtlMs: 30_000,
        cooldownMs: 30_000
      },
      agent: { maxSteps: 10 }
    })
  })

  it("validate fills defaults under explicit values and keeps unknown keys", () => {
    const result = KernelConfig.validate({
      routing: { tierMapping: { complex: "openai" }, experimental: true },
      ui: { theme: "dark" }
    })
    expect(Either.getOrThrow(result)).toMatchObject({
      plugins: { enabled: ["ollama"] },
      routing: {
        tierMapping: { simple: "ollama", moderate: "ollama", complex: "openai", reasoning: "ollama" },
        experimental: true
      },
      ui: { theme: "dark" }
    })
  })

  it("accepts a document using every known key", () => {
    const document = {
      plugins: { enabled: ["openai", "@tinyclaw/plugin-provider-openai"] },
      routing: {
        defaultProvider: "openai",
        tierMapping: { simple: "ollama", moderate: "litellm", complex: "openai", reasoning: "bedrock" },
        fallbacks: { complex: ["litellm", "ollama"] },
        classifier: { weights: { code: 2 }, thresholds: [0.3, 0.6] },
        healthTtlMs: 0,
        cooldownMs: 5_000
      },
      providers: {
        openai: {
          model: "gpt-4.1",
          baseUrl: "https://api.openai.com/v1",
          rateLimit: { requestsPerMinute: 60, maxConcurrent: 4, maxQueue: 0 },
          timeouts: { firstChunkMs: 10_000, idleMs: 30_000, requestMs: 120_000 },
          healthCheck: "models"
        },
        bedrock: { model: "anthropic.claude-3", region: "eu-west-1" },
        litellm: { baseUrl: "http://127.0.0.1:4000", healthCheck: "liteLLMLiveliness" }
      },
      mcp: {
        servers: {
          everything: { command: "npx", args: ["server-everything"], env: { DEBUG: "1" }, prefix: true, timeoutMs: 5_000 },
          remote: { url: "http://127.0.0.1:3001/mcp" }
        }
      },
      agent: { maxSteps: 25 }
    }
    expect(Either.isRight(KernelConfig.validate(document))).toBe(true)
  })

  it.each([
    [{ routing: { tierMapping: { simple: 42 } } }, "routing.tierMapping.simple"],
    [{ routing: { tierMapping: { simple: "open.ai" } } }, "routing.tierMapping.simple: a provider id must be"],
    [{ routing: { fallbacks: { complex: "openai" } } }, "routing.fallbacks.complex"],
    [{ routing: { classifier: [1, 2] } }, "routing.classifier: must be a JSON object"],
    [{ routing: { healthTtlMs: -1 } }, "routing.healthTtlMs"],
    [{ plugins: { enabled: "openai" } }, "plugins.enabled"],
    [{ providers: { openai: { baseUrl: "ftp://example.com" } } }, "providers.openai.baseUrl: must be an http(s) URL"],
    [{ providers: { openai: { baseUrl: "not a url" } } }, "providers.openai.baseUrl: must be an http(s) URL"],
    [{ providers: { openai: { rateLimit: { maxConcurrent: 0 } } } }, "providers.openai.rateLimit.maxConcurrent"],
    [{ providers: { openai: { rateLimit: { maxQueue: 1.5 } } } }, "providers.openai.rateLimit.maxQueue"],
    [{ providers: { openai: { timeouts: { idleMs: 0 } } } }, "providers.openai.timeouts.idleMs"],
    [{ providers: { openai: { healthCheck: "ping" } } }, "providers.openai.healthCheck"],
    [{ providers: { "open.ai": { model: "x" } } }, "providers"],
    [{ mcp: { servers: { both: { url: "http://127.0.0.1:1/mcp", command: "npx" } } } }, "mcp.servers.both: an MCP server needs exactly one"],
    [{ mcp: { servers: { neither: { args: ["x"] } } } }, "mcp.servers.neither: an MCP server needs exactly one"],
    [{ agent: { maxSteps: 0 } }, "agent.maxSteps"],
    [{ agent: [] }, "agent"]
  ])("rejects %j and names the key in the problem", (document, expected) => {
    expect(problemsOf(document)).toContain(expected)
  })

  it("reports every problem of a document, not just the first", () => {
    const problems = problemsOf({ agent: { maxSteps: -1 }, routing: { cooldownMs: "soon" } })
    expect(problems).toContain("agent.maxSteps")
    expect(problems).toContain("routing.cooldownMs")
  })

  it.prop(
    "any JSON under keys that are not known passes unchanged",
    [fc.dictionary(fc.string({ minLength: 1 }).filter((key) => !["plugins", "routing", "providers", "mcp", "agent", "__proto__"].includes(key)), fc.jsonValue())],
    ([document]) => {
      const effective = Either.getOrThrow(KernelConfig.validate(document))
      for (const [key, value] of Object.entries(document)) expect(effective[key]).toStrictEqual(value)
    }
  )

  it("parseKey splits dotted keys and refuses empty segments and __proto__", () => {
    expect(KernelConfig.parseKey("providers.openai.model")).toEqual(Either.right(["providers", "openai", "model"]))
    for (const key of ["", "a..b", ".a", "a.", "a.__proto__.b"]) {
      expect(Either.isLeft(KernelConfig.parseKey(key))).toBe(true)
    }
  })

  it("keysOverlap matches equal keys and ancestors in both directions, not siblings or prefixes of names", () => {
    expect(KernelConfig.keysOverlap("routing", "routing.tierMapping.simple")).toBe(true)
    expect(KernelConfig.keysOverlap("routing.tierMapping.simple", "routing")).toBe(true)
    expect(KernelConfig.keysOverlap("routing.tierMapping", "routing.tierMapping")).toBe(true)
    expect(KernelConfig.keysOverlap("routing.tierMapping", "routing.fallbacks")).toBe(false)
    expect(KernelConfig.keysOverlap("provider", "providers.openai")).toBe(false)
  })

  it("key builders produce the documented keys", () => {
    expect(KernelConfig.tierMappingKey("complex")).toBe("routing.tierMapping.complex")
    expect(KernelConfig.fallbacksKey("simple")).toBe("routing.fallbacks.simple")
    expect(KernelConfig.providerKey("openai", "baseUrl")).toBe("providers.openai.baseUrl")
  })
})
