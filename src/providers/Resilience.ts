/**
 * The kernel's one retry loop and its bounded waits, shared by every provider.
 * (Placeholder signature: the real policy replaces this body.)
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Stream from "effect/Stream"
import type { ProviderError } from "../domain/Errors.js"
import type { ChatChunk } from "../domain/Message.js"

/** @since 0.1.0 */
export interface ResilienceOptions {
  readonly maxAttempts?: number
  readonly baseDelay?: Duration.DurationInput
  readonly maxDelay?: Duration.DurationInput
  readonly firstChunkTimeout?: Duration.DurationInput
  readonly idleTimeout?: Duration.DurationInput
  readonly requestTimeout?: Duration.DurationInput
}

/** @since 0.1.0 */
export const resilientStream = (
  _providerId: string,
  _options: ResilienceOptions,
  attempt: () => Stream.Stream<ChatChunk, ProviderError>
): Stream.Stream<ChatChunk, ProviderError> => attempt()
