/**
 * Passive health per provider, learned from real calls: a provider whose recent calls mostly
 * failed (or that answered Unauthorized / NotFound) goes into cooldown; after the cooldown one
 * probe request decides whether it is healthy again.
 */

export interface HealthSettings {
  readonly cooldownMs: number
  readonly windowMs: number
  readonly minCalls: number
}

interface Health {
  /** The calls of the window, oldest first, from `head` on (older ones are dropped lazily). */
  calls: Array<{ readonly at: number; readonly ok: boolean }>
  head: number
  /** Failed calls among `calls` from `head` on. */
  failures: number
  cooldownUntil: number
  probing: boolean
}

/** Whether a provider may take a request now, and whether that request is the probe. */
export type Admission = "admit" | "probe" | "cooldown"

export class HealthBook {
  private readonly entries = new Map<string, Health>()

  constructor(private readonly settings: () => HealthSettings) {}

  private entry(id: string): Health {
    let health = this.entries.get(id)
    if (health === undefined) {
      health = { calls: [], head: 0, failures: 0, cooldownUntil: 0, probing: false }
      this.entries.set(id, health)
    }
    return health
  }

  admit(id: string, now: number): Admission {
    const health = this.entries.get(id)
    if (health === undefined || health.cooldownUntil === 0) return "admit"
    if (now < health.cooldownUntil || health.probing) return "cooldown"
    health.probing = true
    return "probe"
  }

  /** Records a call's outcome; `severe` failures (Unauthorized, NotFound) start a cooldown at once. */
  record(id: string, now: number, ok: boolean, severe = false): void {
    const { cooldownMs, minCalls, windowMs } = this.settings()
    const health = this.entry(id)
    if (health.probing) {
      health.probing = false
      health.calls = []
      health.head = 0
      health.failures = 0
      health.cooldownUntil = ok ? 0 : now + cooldownMs
      return
    }
    // Constant time per call however busy the provider: calls leave the window from the front
    // (they arrive in time order), and the failures are counted as they come and go.
    health.calls.push({ at: now, ok })
    if (!ok) health.failures++
    let head = health.head
    while (head < health.calls.length && now - health.calls[head]!.at > windowMs) {
      if (!health.calls[head]!.ok) health.failures--
      head++
    }
    if (head >= 1024 && head * 2 >= health.calls.length) {
      health.calls = health.calls.slice(head)
      head = 0
    }
    health.head = head
    if (ok) return
    const calls = health.calls.length - head
    if (severe || (calls >= minCalls && health.failures * 2 > calls)) {
      health.cooldownUntil = now + cooldownMs
    }
  }

  /** A probe that never ran (for example interrupted) frees the slot for the next request. */
  releaseProbe(id: string): void {
    const health = this.entries.get(id)
    if (health !== undefined) health.probing = false
  }

  inCooldown(id: string, now: number): boolean {
    const health = this.entries.get(id)
    return health !== undefined && health.cooldownUntil !== 0 && now < health.cooldownUntil
  }

  reset(id: string): void {
    this.entries.delete(id)
  }
}
