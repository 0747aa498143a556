import { describe, expect, it } from "@effect/vitest"
import { HealthBook } from "../../src/router/internal/health.js"

const book = () => new HealthBook(() => ({ cooldownMs: 30_000, windowMs: 60_000, minCalls: 3 }))

describe("HealthBook", () => {
  it("starts a cooldown once more than half of at least 3 calls in the window failed", () => {
    const health = book()
    health.record("p", 0, false)
    health.record("p", 1, false)
    expect(health.admit("p", 2)).toBe("admit") // 2 calls: too few to judge
    health.record("p", 2, false)
    expect(health.admit("p", 3)).toBe("cooldown")
    expect(health.inCooldown("p", 30_001)).toBe(true)
    expect(health.inCooldown("p", 30_002)).toBe(false)
  })

  it("one failure among three calls is no reason for a cooldown", () => {
    const health = book()
    health.record("p", 0, true)
    health.record("p", 1, true)
    health.record("p", 2, false)
    expect(health.admit("p", 3)).toBe("admit")
  })

  it("half failed is not more than half", () => {
    const health = book()
    health.record("p", 0, true)
    health.record("p", 1, false)
    health.record("p", 2, true)
    health.record("p", 3, false)
    expect(health.admit("p", 4)).toBe("admit")
  })

  it("forgets calls older than the window", () => {
    const health = book()
    health.record("p", 0, false)
    health.record("p", 1, false)
    health.record("p", 70_000, false)
    expect(health.admit("p", 70_001)).toBe("admit")
  })

  it("a severe failure starts a cooldown at once", () => {
    const health = book()
    health.record("p", 0, false, true)
    expect(health.admit("p", 1)).toBe("cooldown")
    expect(health.admit("other", 1)).toBe("admit")
  })

  it("after the cooldown exactly one probe is admitted, and its outcome decides", () => {
    const health = book()
    health.record("p", 0, false, true)
    expect(health.admit("p", 30_000)).toBe("probe")
    expect(health.admit("p", 30_000)).toBe("cooldown")
    health.record("p", 30_001, false)
    expect(health.admit("p", 30_002)).toBe("cooldown")
    expect(health.admit("p", 60_001)).toBe("probe")
    health.record("p", 60_002, true)
    expect(health.admit("p", 60_003)).toBe("admit")
  })

  it("a released probe lets the next request probe", () => {
    const health = book()
    health.record("p", 0, false, true)
    expect(health.admit("p", 30_000)).toBe("probe")
    health.releaseProbe("p")
    expect(health.admit("p", 30_001)).toBe("probe")
  })
})
