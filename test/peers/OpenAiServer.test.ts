import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as OpenAiServer from "./OpenAiServer.js"

// The peer's own contract, for what the benchmarks rely on.
describe("OpenAiServer peer", () => {
  const post = (url: string) =>
    Effect.promise(async () => {
      const response = await fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] })
      })
      return (await response.json()) as { readonly choices: ReadonlyArray<{ readonly message: { readonly content: string } }> }
    })

  it.live("keeps every request by default", () =>
    Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: (request) => OpenAiServer.json(OpenAiServer.textCompletion(`answer ${request.index}`))
      })
      const answers = [yield* post(server.url), yield* post(server.url)]
      expect(answers.map((answer) => answer.choices[0]!.message.content)).toEqual(["answer 0", "answer 1"])
      expect(server.completions.map((request) => request.index)).toEqual([0, 1])
      expect(server.completions[1]!.body).toMatchObject({ model: "m" })
    }).pipe(Effect.scoped))

  it.live("with record: false answers by its script, counts requests, and keeps none", () =>
    Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: (request) => OpenAiServer.json(OpenAiServer.textCompletion(`answer ${request.index}`)),
        record: false
      })
      const answers = [yield* post(server.url), yield* post(server.url), yield* post(server.url)]
      expect(answers.map((answer) => answer.choices[0]!.message.content)).toEqual(["answer 0", "answer 1", "answer 2"])
      expect(server.requests).toEqual([])
    }).pipe(Effect.scoped))
})
