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
  calls: Array<{ readonly at: number; readonly ok: boolean }>
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
      health = { calls: [], cooldownUntil: 0, probing: false }
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
      health.cooldownUntil = ok ? 0 : now + cooldownMs
      return
    }
    health.calls.push({ at: now, ok })
    health.calls = health.calls.filter((call) => now - call.at <= windowMs)
    if (ok) return
    const failures = health.calls.filter((call) => !call.ok).length
    if (severe || (health.calls.length >= minCalls && failures * 2 > health.calls.length)) {
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
