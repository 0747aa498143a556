import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
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

  it("decides as if it re-read every call of the window, over long runs of calls (property)", () => {
    // The reference keeps every call and filters the window on each record.
    const windowMs = 100
    const settings = { cooldownMs: 50, windowMs, minCalls: 3 }
    fc.assert(
      fc.property(
        fc.array(fc.record({ dt: fc.integer({ min: 0, max: 4 }), ok: fc.boolean(), severe: fc.boolean() }), {
          minLength: 1,
          maxLength: 3000,
          size: "max"
        }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (events, okBias) => {
          const health = new HealthBook(() => settings)
          let calls: Array<{ at: number; ok: boolean }> = []
          let cooldownUntil = 0
          let now = 0
          for (const event of events) {
            now += event.dt
            const ok = event.ok || okBias > 0.5
            const severe = !ok && event.severe && okBias < 0.1
            health.record("p", now, ok, severe)
            calls.push({ at: now, ok })
            calls = calls.filter((call) => now - call.at <= windowMs)
            const failures = calls.filter((call) => !call.ok).length
            if (!ok && (severe || (calls.length >= 3 && failures * 2 > calls.length))) cooldownUntil = now + 50
            expect(health.inCooldown("p", now)).toBe(cooldownUntil !== 0 && now < cooldownUntil)
          }
        }
      ),
      { numRuns: 60, endOnFailure: true }
    )
  })
})
