/**
 * Reads a request body up to a limit without holding more than the limit: a declared
 * `Content-Length` over it is refused before a byte is read, and a body that streams past it
 * (chunked) is refused as soon as it does. What the client still sends is then discarded, so the
 * refusal can be written back while the connection closes.
 */
import { RequestError } from "@effect/platform/HttpServerError"
import type { HttpServerRequest } from "@effect/platform/HttpServerRequest"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"

/** The body is over `limit` bytes (declared or read). */
export class BodyTooLarge extends Data.TaggedError("BodyTooLarge")<{ readonly limit: number }> {}

export const readBody = (request: HttpServerRequest, limit: number): Effect.Effect<string, BodyTooLarge | RequestError> => {
  const declared = Number(request.headers["content-length"] ?? Number.NaN)
  if (declared > limit) return Effect.fail(new BodyTooLarge({ limit }))
  return Effect.async<string, BodyTooLarge | RequestError>((resume) => {
    const source = NodeHttpServerRequest.toIncomingMessage(request)
    const chunks: Array<Buffer> = []
    let size = 0
    const stop = () => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onError)
      source.off("close", onClose)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size <= limit) return void chunks.push(chunk)
      stop()
      chunks.length = 0
      // No listener: the rest flows into nothing until the connection closes after the answer.
      source.resume()
      resume(Effect.fail(new BodyTooLarge({ limit })))
    }
    const onEnd = () => {
      stop()
      resume(Effect.succeed(Buffer.concat(chunks).toString("utf8")))
    }
    const onError = (cause: unknown) => {
      stop()
      resume(Effect.fail(new RequestError({ request, reason: "Transport", cause, description: "the request body could not be read" })))
    }
    const onClose = () => onError(new Error("the client closed the connection before the body ended"))
    source.on("data", onData)
    source.on("end", onEnd)
    source.on("error", onError)
    source.on("close", onClose)
    return Effect.sync(stop)
  })
}
