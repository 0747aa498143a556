/**
 * Reading an OpenAI-compatible answer: a whole JSON completion (bounded; what `stream: false`
 * asks for, and what some servers send anyway), or an SSE body decoded into chat chunks — as
 * reads (what the agent and the resilience policy read) or as one channel (what `stream` runs).
 * The body is read from undici's `Readable` when there is one (see `openaiBody.ts`), else
 * through `response.stream`.
 */
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { ProviderError } from "../../domain/Errors.js"
import type { ChatChunk, LLMResponse, ToolDefinition } from "../../domain/Message.js"
import * as LanguageModel from "../LanguageModel.js"
import { BodyReader, nodeBody, readBounded } from "./openaiBody.js"
import * as Errors from "./openaiErrors.js"
import type { Sent } from "./openaiExchange.js"
import { decodeChannel, decodeNext, nextChannel } from "./openaiStream.js"
import { decodeCompletion } from "./openaiWire.js"
import { type Limits, responseTooLarge } from "./responseLimits.js"

/** The ways one provider reads its answers. */
export const makeAnswers = (providerId: string, root: string, limits: Limits) => {
  const readCompletion = (
    response: HttpClientResponse.HttpClientResponse,
    secret: string | undefined,
    metadata: Record<string, string> | undefined,
    tools: ReadonlyArray<ToolDefinition> | undefined
  ): Effect.Effect<LLMResponse, ProviderError> =>
    Effect.flatMap(
      readBounded(response, limits.maxResponseBytes, (cause) =>
        Errors.network(providerId, root, cause, "while reading the answer")),
      ({ complete, text }) => {
        if (!complete) return Effect.fail(responseTooLarge(providerId, "an answer", "maxResponseBytes", limits.maxResponseBytes))
        let json: unknown
        try {
          json = JSON.parse(text)
        } catch {
          return Effect.fail(Errors.invalidResponse(providerId, `the body is not JSON: ${text}`, secret))
        }
        const decoded = decodeCompletion(json, metadata, tools)
        return typeof decoded === "string"
          ? Effect.fail(Errors.invalidResponse(providerId, decoded, secret))
          : Effect.succeed(decoded)
      }
    )

  const streamingFailed = (cause: unknown) =>
    Errors.network(providerId, root, cause, "while the answer was streaming")
  const bodyFailed = (error: HttpClientError.ResponseError) => streamingFailed(error.cause ?? error)

  // The answer as reads of chat chunks. The body is read from undici's `Readable` when there
  // is one (see `internal/openaiBody.ts`), else through `response.stream`.
  const reads = (
    { metadata, response, secret, whole }: Sent,
    tools: ReadonlyArray<ToolDefinition> | undefined
  ): Effect.Effect<LanguageModel.Reads> => {
    if (whole) {
      let read = false
      return Effect.succeed({
        next: Effect.suspend(() => {
          if (read) return Effect.succeed(undefined)
          read = true
          return Effect.map(
            readCompletion(response, secret, metadata, tools),
            (completion) => Chunk.fromIterable(wholeChunks(completion))
          )
        }),
        close: () => Effect.void
      })
    }
    const readable = nodeBody(response)
    if (readable !== undefined) {
      return Effect.sync(() => {
        const reader = new BodyReader(readable, response, streamingFailed)
        const decoded = decodeNext(reader.next, providerId, metadata, secret, limits.maxEventBytes, tools, identity, reader.ready)
        return { next: decoded.next, ready: decoded.ready, close: () => reader.close }
      })
    }
    return Effect.flatMap(Scope.make(), (scope) =>
      Effect.map(Scope.extend(Channel.toPull(Stream.toChannel(response.stream)), scope), (pull) => ({
        next: decodeNext(
          Effect.map(pull, (read) => read._tag === "Right" ? read.right : undefined),
          providerId,
          metadata,
          secret,
          limits.maxEventBytes,
          tools,
          bodyFailed
        ).next,
        close: (exit) => Scope.close(scope, exit)
      })))
  }

  // The answer as one channel: the body's reads decoded and written out, or, without a
  // `Readable`, the body's stream piped straight into the SSE decoder.
  const answer = (
    sent: Sent,
    tools: ReadonlyArray<ToolDefinition> | undefined
  ): Channel.Channel<Chunk.Chunk<ChatChunk>, unknown, ProviderError, unknown, void, unknown> => {
    if (!sent.whole) {
      const readable = nodeBody(sent.response)
      if (readable === undefined) {
        return Channel.pipeTo(
          Stream.toChannel(sent.response.stream),
          decodeChannel(providerId, sent.metadata, sent.secret, limits.maxEventBytes, tools, bodyFailed)
        )
      }
      return Channel.suspend(() => {
        const reader = new BodyReader(readable, sent.response, streamingFailed)
        return Channel.ensuring(
          nextChannel(
            decodeNext(reader.next, providerId, sent.metadata, sent.secret, limits.maxEventBytes, tools, identity, reader.ready)
              .next
          ),
          reader.close
        )
      })
    }
    return Stream.toChannel(Stream.fromIterableEffect(
      Effect.map(readCompletion(sent.response, sent.secret, sent.metadata, tools), wholeChunks)
    ))
  }

  return { readCompletion, reads, answer }
}

/** A whole answer as the chunks its stream would have been: its reasoning first, when it has any. */
const wholeChunks = (completion: LLMResponse): ReadonlyArray<ChatChunk> => {
  const chunks = LanguageModel.responseToChunks(completion)
  return completion.reasoning === undefined ? chunks : [{ _tag: "reasoning-delta", delta: completion.reasoning }, ...chunks]
}
