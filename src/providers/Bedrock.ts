/**
 * Amazon Bedrock as a `LanguageModel`, through the official `@aws-sdk/client-bedrock-runtime`
 * Converse and ConverseStream APIs. The provider is thin: it maps domain messages to Converse
 * requests and Converse answers and errors back to domain values; retries, timeouts and rate
 * limits are applied from outside by `Resilience.withResilience`.
 *
 * @since 0.1.0
 */
import {
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  type ConverseStreamOutput
} from "@aws-sdk/client-bedrock-runtime"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { type ConfigError, ProviderError, type ProviderErrorReason } from "../domain/Errors.js"
import type { ChatChunk, Message, ToolDefinition } from "../domain/Message.js"
import { toProviderError } from "./internal/bedrockErrors.js"
import { BoundedHttpHandler } from "./internal/bedrockLimits.js"
import * as request from "./internal/bedrockRequest.js"
import * as response from "./internal/bedrockResponse.js"
import { limitsOf } from "./internal/responseLimits.js"
import * as LanguageModel from "./LanguageModel.js"
import * as RateLimiter from "./RateLimiter.js"
import { type ResilienceOptions, withResilience } from "./Resilience.js"

/**
 * Fixed AWS credentials. Values may be `Redacted`; they are revealed only when the SDK signs a
 * request and never reach logs, events or errors.
 *
 * @since 0.1.0
 */
export interface StaticCredentials {
  readonly accessKeyId: string | Redacted.Redacted<string>
  readonly secretAccessKey: string | Redacted.Redacted<string>
  readonly sessionToken?: string | Redacted.Redacted<string>
}

/**
 * Credentials as the AWS SDK consumes them, for `CredentialsProvider`.
 *
 * @since 0.1.0
 */
export interface ResolvedCredentials {
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly sessionToken?: string
  readonly expiration?: Date
}

/**
 * A function the SDK calls for credentials (for example one of `@aws-sdk/credential-providers`),
 * for credentials that rotate.
 *
 * @since 0.1.0
 */
export type CredentialsProvider = () => Promise<ResolvedCredentials>

/**
 * How the provider reaches Bedrock. `region`, `endpoint` and `credentials` default to the AWS
 * SDK's own resolution (environment, profiles, SSO, instance roles). `healthTtl` is how long
 * an `isAvailable` answer is reused (default 30 s). `limits` bounds what is read of Bedrock's
 * answers (see `LanguageModel.ResponseLimits`; `maxEventBytes` bounds one event-stream message).
 * `images: false` (a model that cannot see) refuses a conversation with an image part with
 * `InvalidRequest` before sending it; images otherwise go as image blocks of their bytes (an
 * image given by URL is refused: Bedrock cannot fetch it). `stream: false` asks Converse for the
 * whole answer instead of ConverseStream (a request's `ChatOptions.stream` overrides it).
 *
 * @since 0.1.0
 */
export interface BedrockConfig {
  readonly model: string
  readonly region?: string
  readonly endpoint?: string
  readonly credentials?: StaticCredentials | CredentialsProvider
  readonly healthTtl?: Duration.DurationInput
  readonly limits?: LanguageModel.ResponseLimits
  /** Whether the model takes images (default `true`). */
  readonly images?: boolean
  /** Whether answers are streamed (default `true`). */
  readonly stream?: boolean
}

/**
 * `BedrockConfig` plus the retry and timeout policy `bedrockProvider` applies.
 *
 * @since 0.1.0
 */
export interface BedrockProviderConfig extends BedrockConfig {
  readonly resilience?: ResilienceOptions
  /** Requests per minute, concurrent requests and queue bound, as for any provider. */
  readonly rateLimit?: RateLimiter.RateLimitOptions
}

/**
 * Maps domain messages to a Bedrock conversation (`system` blocks apart, `toolUse` and
 * `toolResult` blocks, consecutive turns of one role merged).
 *
 * @since 0.1.0
 */
export const toBedrockMessages = request.toBedrockMessages

/**
 * Maps tool definitions and the tool choice to Bedrock's `toolConfig` (`undefined` for no
 * tools or the choice `"none"`).
 *
 * @since 0.1.0
 */
export const toBedrockToolConfig = request.toBedrockToolConfig

/**
 * Maps `temperature` and `maxTokens` to Bedrock's `inferenceConfig`.
 *
 * @since 0.1.0
 */
export const toInferenceConfig = request.toInferenceConfig

/**
 * Builds the complete Converse request for a model, conversation, tools and options.
 *
 * @since 0.1.0
 */
export const toBedrockRequest = request.toBedrockRequest

/**
 * Maps a Bedrock stop reason to a domain finish reason.
 *
 * @since 0.1.0
 */
export const toFinishReason = response.toFinishReason

/**
 * Maps Bedrock token usage to domain usage (unreported figures stay `undefined`).
 *
 * @since 0.1.0
 */
export const toUsage = response.toUsage

/**
 * Maps a complete Converse response to an `LLMResponse`.
 *
 * @since 0.1.0
 */
export const fromConverseResponse = response.fromConverseResponse

/**
 * Folds ConverseStream events into `ChatChunk`s; see `StreamDecoder`.
 *
 * @since 0.1.0
 */
export const makeStreamDecoder = response.makeStreamDecoder

/**
 * Stateful decoder of one ConverseStream.
 *
 * @since 0.1.0
 */
export type StreamDecoder = response.StreamDecoder

const reveal = (value: string | Redacted.Redacted<string>): string => Redacted.isRedacted(value) ? Redacted.value(value) : value

const toSdkCredentials = (credentials: StaticCredentials | CredentialsProvider | undefined): CredentialsProvider | undefined => {
  if (credentials === undefined || typeof credentials === "function") return credentials
  return () =>
    Promise.resolve({
      accessKeyId: reveal(credentials.accessKeyId),
      secretAccessKey: reveal(credentials.secretAccessKey),
      ...(credentials.sessionToken !== undefined ? { sessionToken: reveal(credentials.sessionToken) } : {})
    })
}

const staticSecrets = (credentials: StaticCredentials | CredentialsProvider | undefined): ReadonlyArray<string> =>
  credentials === undefined || typeof credentials === "function" ? [] : [
    reveal(credentials.accessKeyId),
    reveal(credentials.secretAccessKey),
    ...(credentials.sessionToken !== undefined ? [reveal(credentials.sessionToken)] : [])
  ]

const checkEndpoint = (endpoint: string | undefined): ProviderError | undefined => {
  if (endpoint === undefined || URL.canParse(endpoint)) return undefined
  return new ProviderError({
    reason: "InvalidRequest",
    providerId: request.providerId,
    message:
      `The Bedrock endpoint "${endpoint}" is not a URL; pass a full URL such as https://bedrock-runtime.us-east-1.amazonaws.com, or omit it.`,
    retryable: false
  })
}

// Failures that say the provider cannot serve right now, as opposed to a bad request.
const unhealthyReasons: ReadonlySet<ProviderErrorReason> = new Set([
  "Unauthorized",
  "NotFound",
  "Network",
  "ServerError",
  "Timeout"
])

const probeTimeout = Duration.seconds(5)

interface Health {
  readonly available: boolean
  readonly checkedAt: number
}

/**
 * Builds the raw Bedrock provider (no retries, no timeouts). One `BedrockRuntimeClient` serves
 * every call and is destroyed with the scope. The SDK's own retries are off so the kernel's
 * policy is the only retry loop; interrupting a call aborts its HTTP request.
 *
 * @example
 * ```ts
 * const model = yield* Bedrock.make({ model: "anthropic.claude-3-5-haiku-20241022-v1:0", region: "us-east-1" })
 * const answer = yield* model.chat([Message.user("Hello")])
 * ```
 * @since 0.1.0
 */
export const make = (config: BedrockConfig): Effect.Effect<LanguageModel.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const configError = checkEndpoint(config.endpoint)
    const credentials = toSdkCredentials(config.credentials)
    const secrets = staticSecrets(config.credentials)
    const client = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new BedrockRuntimeClient({
          maxAttempts: 1,
          // HTTP/1.1 with keep-alive instead of the SDK's HTTP/2 default: connections are reused
          // across requests, and a connection dropped mid-stream surfaces as an error instead of
          // looking like an ordinary end of stream. The handler also bounds what is read.
          requestHandler: new BoundedHttpHandler(limitsOf(config.limits)),
          ...(config.region !== undefined ? { region: config.region } : {}),
          ...(config.endpoint !== undefined && configError === undefined ? { endpoint: config.endpoint } : {}),
          ...(credentials !== undefined ? { credentials } : {})
        })
      ),
      (client) => Effect.sync(() => client.destroy())
    )
    const spanAttributes = { "provider.id": request.providerId, "provider.model": config.model }
    const toError = (error: unknown): ProviderError => toProviderError(error, secrets)

    const health = yield* Ref.make(Option.none<Health>())
    const healthTtl = Duration.toMillis(Duration.decode(config.healthTtl ?? "30 seconds"))
    const record = (available: boolean) =>
      Clock.currentTimeMillis.pipe(Effect.flatMap((now) => Ref.set(health, Option.some({ available, checkedAt: now }))))
    const learn = (error: ProviderError) => unhealthyReasons.has(error.reason) ? record(false) : Effect.void

    // Resolving the region and credentials is what a call needs first, and costs no generation.
    const probe: Effect.Effect<boolean> = configError !== undefined ? Effect.succeed(false) : Effect.tryPromise(async () => {
      await client.config.region()
      const identity = await client.config.credentials()
      return identity.accessKeyId !== "" && identity.secretAccessKey !== ""
    }).pipe(
      Effect.timeoutTo({ duration: probeTimeout, onSuccess: (ok) => ok, onTimeout: () => false }),
      Effect.orElseSucceed(() => false)
    )

    const fresh = Effect.zipWith(Ref.get(health), Clock.currentTimeMillis, (cached, now) =>
      Option.filter(cached, (state) => now - state.checkedAt < healthTtl))
    // One probe at a time; calls that learn health never wait for it.
    const probeLock = yield* Effect.makeSemaphore(1)
    const isAvailable = fresh.pipe(
      Effect.flatMap(Option.match({
        onSome: (state) => Effect.succeed(state.available),
        onNone: () =>
          probeLock.withPermits(1)(fresh.pipe(Effect.flatMap(Option.match({
            onSome: (state) => Effect.succeed(state.available),
            onNone: () => Effect.tap(probe, record)
          }))))
      })),
      Effect.withSpan("Bedrock.isAvailable", { attributes: spanAttributes })
    )

    const chat = Effect.fn("Bedrock.chat", { attributes: spanAttributes })(
      function*(messages: ReadonlyArray<Message>, tools?: ReadonlyArray<ToolDefinition>, options?: LanguageModel.ChatOptions) {
        if (configError !== undefined) return yield* configError
        const input = yield* request.toBedrockRequest(config.model, messages, tools, options, config)
        const output = yield* Effect.tryPromise({
          try: (signal) => client.send(new ConverseCommand(input), { abortSignal: signal }),
          catch: toError
        })
        yield* record(true)
        return yield* response.fromConverseResponse(output, input.modelId, tools)
      },
      Effect.tapError(learn)
    )

    const stream = (
      messages: ReadonlyArray<Message>,
      tools?: ReadonlyArray<ToolDefinition>,
      options?: LanguageModel.ChatOptions
    ): Stream.Stream<ChatChunk, ProviderError> =>
      (options?.stream ?? config.stream) === false
        ? Stream.fromIterableEffect(Effect.map(chat(messages, tools, options), response.responseChunks))
        : streamed(messages, tools, options)

    const streamed = (
      messages: ReadonlyArray<Message>,
      tools?: ReadonlyArray<ToolDefinition>,
      options?: LanguageModel.ChatOptions
    ): Stream.Stream<ChatChunk, ProviderError> =>
      Stream.unwrapScoped(Effect.gen(function*() {
        if (configError !== undefined) return yield* configError
        const input = yield* request.toBedrockRequest(config.model, messages, tools, options, config)
        let drained = false
        // Aborting destroys the request, and with it the socket; a drained response is left alone
        // so its keep-alive connection can be reused.
        const controller = yield* Effect.acquireRelease(
          Effect.sync(() => new AbortController()),
          (controller) =>
            Effect.sync(() => {
              if (!drained) controller.abort()
            })
        )
        const output = yield* Effect.tryPromise({
          try: () => client.send(new ConverseStreamCommand(input), { abortSignal: controller.signal }),
          catch: toError
        })
        yield* record(true)
        if (output.stream === undefined) {
          return yield* new ProviderError({
            reason: "InvalidResponse",
            providerId: request.providerId,
            message: "Bedrock answered ConverseStream without an event stream; check that the endpoint is Bedrock Runtime.",
            retryable: false
          })
        }
        const events = output.stream[Symbol.asyncIterator]()
        const decoder = response.makeStreamDecoder(input.modelId, tools)
        const next: Effect.Effect<ConverseStreamOutput, Option.Option<ProviderError>> = Effect.tryPromise({
          try: () => events.next(),
          catch: (error) => Option.some(toError(error))
        }).pipe(Effect.flatMap((result) => result.done ? Effect.fail(Option.none()) : Effect.succeed(result.value)))
        return Stream.repeatEffectOption(next).pipe(
          Stream.mapConcatEffect(decoder.step),
          Stream.concat(Stream.fromIterableEffect(Effect.suspend(() => {
            drained = true
            return decoder.end()
          })))
        )
      })).pipe(
        Stream.tapError(learn),
        Stream.withSpan("Bedrock.stream", { attributes: spanAttributes })
      )

    return LanguageModel.make({
      id: request.providerId,
      name: `Bedrock (${config.model})`,
      chat,
      stream,
      isAvailable
    })
  })

/**
 * The Bedrock provider as a `LanguageModel` Layer, with the kernel's retry and timeout policy
 * applied (`resilience` tunes it). The client lives as long as the Layer.
 *
 * @example
 * ```ts
 * const ModelLive = Bedrock.bedrockProvider({
 *   model: "anthropic.claude-3-5-haiku-20241022-v1:0",
 *   region: "eu-west-1",
 *   credentials: { accessKeyId, secretAccessKey: Redacted.make(secret) }
 * })
 * ```
 * @since 0.1.0
 */
export const bedrockProvider = (
  config: BedrockProviderConfig
): Layer.Layer<LanguageModel.LanguageModel, ConfigError> =>
  Layer.scoped(
    LanguageModel.LanguageModel,
    Effect.gen(function*() {
      const service = yield* make(config)
      const rateLimiter = config.rateLimit !== undefined ? yield* RateLimiter.make(config.rateLimit) : undefined
      return withResilience(service, {
        model: config.model,
        ...config.resilience,
        ...(rateLimiter !== undefined ? { rateLimiter } : {})
      })
    })
  )
