/**
 * A stand-in OpenAI-compatible server on 127.0.0.1 for the examples, so they run with no proxy,
 * key or network: `POST /v1/chat/completions` streams (SSE) or returns (JSON) a fixed answer,
 * word by word, and `GET /v1/models` lists one model. It is not a language model and its answer
 * says so.
 */
import * as Effect from "effect/Effect"
import * as Http from "node:http"
import type * as Net from "node:net"

const completionChunk = (model: string, delta: Record<string, unknown>, finishReason: string | null = null) =>
  JSON.stringify({
    id: "chatcmpl-local",
    object: "chat.completion.chunk",
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, delta, finish_reason: finishReason }]
  })

const readBody = (request: Http.IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    let body = ""
    request.setEncoding("utf8")
    request.on("data", (piece: string) => (body += piece))
    request.on("end", () => resolve(body))
    request.on("error", reject)
  })

const answer = (answerText: string) => async (request: Http.IncomingMessage, response: Http.ServerResponse) => {
  const path = new URL(request.url ?? "/", "http://127.0.0.1").pathname
  if (request.method === "GET" && path === "/v1/models") {
    response.writeHead(200, { "content-type": "application/json" })
    response.end(JSON.stringify({ object: "list", data: [{ id: "local-stand-in", object: "model" }] }))
    return
  }
  if (request.method !== "POST" || path !== "/v1/chat/completions") {
    response.writeHead(404, { "content-type": "application/json" })
    response.end(JSON.stringify({ error: { message: `Not found: ${request.method} ${path}` } }))
    return
  }
  const body = JSON.parse(await readBody(request)) as { readonly model?: string; readonly stream?: boolean }
  const model = body.model ?? "local-stand-in"
  if (body.stream !== true) {
    response.writeHead(200, { "content-type": "application/json" })
    response.end(JSON.stringify({
      id: "chatcmpl-local",
      object: "chat.completion",
      model,
      choices: [{ index: 0, message: { role: "assistant", content: answerText }, finish_reason: "stop" }]
    }))
    return
  }
  response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
  response.write(`data: ${completionChunk(model, { role: "assistant", content: "" })}\n\n`)
  for (const word of answerText.match(/\S+\s*/g) ?? []) response.write(`data: ${completionChunk(model, { content: word })}\n\n`)
  response.write(`data: ${completionChunk(model, {}, "stop")}\n\n`)
  response.end("data: [DONE]\n\n")
}

/**
 * Starts the stand-in on a free port of 127.0.0.1 for the lifetime of the scope and returns its
 * base URL.
 */
export const startLocalModelServer = (answerText: string) =>
  Effect.acquireRelease(
    Effect.async<Http.Server>((resume) => {
      const handle = answer(answerText)
      const server = Http.createServer((request, response) => {
        handle(request, response).catch((error: unknown) => {
          response.writeHead(400, { "content-type": "application/json" })
          response.end(JSON.stringify({ error: { message: error instanceof Error ? error.message : String(error) } }))
        })
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map((server) => `http://127.0.0.1:${(server.address() as Net.AddressInfo).port}`))
