/**
 * An OpenAI-compatible provider's health: a verdict learned from real calls and kept for a time,
 * else one probe at a time (`GET /v1/models` or LiteLLM's liveliness route), so `isAvailable`
 * never costs a generation.
 */
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as Option from "effect/Option"
import type { OpenAiCompatibleConfig } from "../OpenAiCompatible.js"
import { readBounded } from "./openaiBody.js"

/** What the provider knows of its server's health, and how it learns. */
export interface Health {
  readonly isAvailable: Effect.Effect<boolean>
  readonly learn: (available: boolean) => Effect.Effect<void>
}

export const makeHealth = (
  config: OpenAiCompatibleConfig,
  root: string,
  maxBodyBytes: number,
  get: (url: string) => Effect.Effect<HttpClientResponse.HttpClientResponse, unknown>
) =>
  Effect.gen(function*(): Effect.fn.Return<Health> {
    const ttlMs = Duration.toMillis(Duration.decode(config.healthTtl ?? "30 seconds"))
    const timeout = config.healthTimeout ?? "5 seconds"
    const url = config.healthCheck === "liteLLMLiveliness" ? `${root}/health/liveliness` : `${root}/v1/models`
    const probeLock = yield* Effect.makeSemaphore(1)
    let verdict: { readonly available: boolean; readonly until: number } | undefined

    const learn = (available: boolean) =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          verdict = { available, until: clock.unsafeCurrentTimeMillis() + ttlMs }
        })
      )
    const cached = Effect.map(Clock.currentTimeMillis, (now) =>
      verdict !== undefined && now < verdict.until ? Option.some(verdict.available) : Option.none<boolean>())
    const probe = get(url).pipe(
      Effect.flatMap((response) =>
        Effect.as(Effect.ignore(readBounded(response, maxBodyBytes, identity)), response.status >= 200 && response.status < 300)
      ),
      Effect.timeout(timeout),
      Effect.orElseSucceed(() => false),
      Effect.tap(learn)
    )
    const isAvailable = Effect.flatMap(cached, (hit) =>
      Option.isSome(hit)
        ? Effect.succeed(hit.value)
        : probeLock.withPermits(1)(
          Effect.flatMap(cached, (again) => Option.isSome(again) ? Effect.succeed(again.value) : probe)
        )).pipe(Effect.withSpan("LanguageModel.isAvailable", { attributes: { "gen_ai.provider.name": config.id } }))
    return { isAvailable, learn }
  })

