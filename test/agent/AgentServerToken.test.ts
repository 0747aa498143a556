import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { requiredToken } from "../../src/agent/internal/serverAuth.js"

// Servers in tests bind to 127.0.0.1 only, so the choice for other interfaces is checked here.
describe("AgentServer's default token", () => {
  it.effect("requires no token on loopback unless given one, and generates one for any other interface", () =>
    Effect.sync(() => {
      expect(requiredToken(undefined, "127.0.0.1")).toBeUndefined()
      expect(requiredToken(undefined, "::1")).toBeUndefined()
      expect(requiredToken(undefined, "localhost")).toBeUndefined()
      expect(Redacted.value(requiredToken("given", "127.0.0.1")!)).toBe("given")
      const generated = requiredToken(undefined, "0.0.0.0")!
      expect(Redacted.isRedacted(generated)).toBe(true)
      expect(Redacted.value(generated)).toMatch(/^[\w-]{43}$/)
      expect(Redacted.value(requiredToken(undefined, "192.168.1.20")!)).not.toBe(Redacted.value(generated))
    }))

})
