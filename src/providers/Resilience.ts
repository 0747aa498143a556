/**
 * The kernel's one retry loop and its bounded waits, applied to any provider from outside so
 * providers stay thin (wire format in, domain out).
 * (Placeholder: the real policy replaces this body, keeping the exported names.)
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as LanguageModel from "./LanguageModel.js"

/** @since 0.1.0 */
export interface ResilienceOptions {
  readonly maxAttempts?: number
  readonly baseDelay?: Duration.DurationInput
  readonly maxDelay?: Duration.DurationInput
  readonly firstChunkTimeout?: Duration.DurationInput
  readonly idleTimeout?: Duration.DurationInput
  readonly requestTimeout?: Duration.DurationInput
}

/** Wraps a provider with the retry policy and timeouts. @since 0.1.0 */
export const withResilience = (
  service: LanguageModel.Service,
  _options: ResilienceOptions = {}
): LanguageModel.Service => service
