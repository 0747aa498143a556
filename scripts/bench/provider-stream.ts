/**
 * Streaming throughput of the OpenAI-compatible provider. A local server streams 100,000 small
 * `chat.completion.chunk` deltas (plus `[DONE]`); the same response is read three ways, all in
 * one run:
 *
 * - ours: `LanguageModel.stream` from `OpenAiCompatible.make` (policy included) over undici;
 * - floor: Node `fetch`, a minimal line splitter and `JSON.parse` of each event;
 * - AI SDK: `streamText` with `@ai-sdk/openai`'s `createOpenAI({ baseURL, apiKey }).chat(model)`.
 *
 * Each is warmed up, then run several times interleaved; medians are reported with the ratios
 * (targets: ours ≥ 1.5× the AI SDK's chunks/s and ≥ 0.5× the floor's).
 *
 * Run: `npm run bench:provider-stream [-- deltas iterations]` (builds dist/ first: the benchmark
 * loads the package as a user gets it)
 */
import { createOpenAI } from "@ai-sdk/openai"
import { NodeHttpClient } from "@effect/platform-node"
import { streamText } from "ai"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import * as Message from "effect-agent-kernel/Message"
import * as OpenAiCompatible from "effect-agent-kernel/OpenAiCompatible"
import * as OpenAiServer from "../../test/peers/OpenAiServer.js"

const deltas = Number(process.argv[2] ?? 100_000)
const iterations = Number(process.argv[3] ?? 5)

const buildPayload = (count: number): Buffer => {
  const parts: Array<string> = []
  const event = (delta: unknown, finish: string | null = null) =>
    `data: ${
      JSON.stringify({
        id: "chatcmpl-bench",
        object: "chat.completion.chunk",
        created: 1_700_000_000,
        model: "bench-model",
        choices: [{ index: 0, delta, finish_reason: finish }]
      })
    }\n\n`
  parts.push(event({ role: "assistant", content: "" }))
  for (let i = 0; i < count; i++) parts.push(event({ content: `t${i % 10} ` }))
  parts.push(event({}, "stop"))
  parts.push(`data: ${
    JSON.stringify({
      id: "chatcmpl-bench",
      object: "chat.completion.chunk",
      created: 1_700_000_000,
      model: "bench-model",
      choices: [],
      usage: { prompt_tokens: 5, completion_tokens: count, total_tokens: count + 5 }
    })
  }\n\n`)
  parts.push("data: [DONE]\n\n")
  return Buffer.from(parts.join(""))
}

interface Sample {
  readonly chunks: number
  readonly seconds: number
}

// Each run starts from a collected heap, so no contender pays for another's garbage.
v8.setFlagsFromString("--expose-gc")
const collectGarbage = vm.runInNewContext("gc") as () => void

const timed = async (run: () => Promise<number>): Promise<Sample> => {
  collectGarbage()
  const started = process.hrtime.bigint()
  const chunks = await run()
  return { chunks, seconds: Number(process.hrtime.bigint() - started) / 1e9 }
}

const floor = (url: string) => async (): Promise<number> => {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "bench-model", stream: true, messages: [{ role: "user", content: "go" }] })
  })
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let buffered = ""
  let count = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    buffered += decoder.decode(value, { stream: true })
    let start = 0
    let newline: number
    while ((newline = buffered.indexOf("\n", start)) >= 0) {
      const line = buffered.slice(start, newline)
      start = newline + 1
      if (!line.startsWith("data: ")) continue
      const data = line.slice(6)
      if (data === "[DONE]") {
        await reader.cancel()
        return count
      }
      const content = JSON.parse(data).choices[0]?.delta?.content
      if (typeof content === "string" && content !== "") count++
    }
    buffered = buffered.slice(start)
  }
  return count
}

const aiSdk = (url: string) => {
  const model = createOpenAI({ baseURL: `${url}/v1`, apiKey: "bench" }).chat("bench-model")
  return async (): Promise<number> => {
    const result = streamText({ model, prompt: "go", maxRetries: 0 })
    let count = 0
    for await (const part of result.fullStream) {
      if (part.type === "text-delta") count++
    }
    return count
  }
}

const ours = async (url: string) => {
  // The runtime keeps the undici dispatcher alive across runs, as an application's Layer would.
  const runtime = ManagedRuntime.make(NodeHttpClient.layerUndici)
  const provider = await runtime.runPromise(
    OpenAiCompatible.make({ id: "bench", model: "bench-model", baseUrl: url, apiKey: Redacted.make("bench") })
  )
  const messages = [Message.user("go")]
  return (): Promise<number> =>
    runtime.runPromise(
      Stream.runFold(provider.stream(messages), 0, (count, chunk) => chunk._tag === "text-delta" ? count + 1 : count)
    )
}

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

const main = async () => {
  const payload = buildPayload(deltas)
  const server = await OpenAiServer.listen({
    script: () => ({
      kind: "raw",
      status: 200,
      headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
      body: payload,
      chunkSize: 64 * 1024
    })
  })
  const runners: ReadonlyArray<readonly [string, () => Promise<number>]> = [
    ["ours (LanguageModel.stream)", await ours(server.url)],
    ["floor (fetch + split + JSON.parse)", floor(server.url)],
    ["AI SDK (streamText)", aiSdk(server.url)]
  ]
  const samples = new Map<string, Array<Sample>>(runners.map(([name]) => [name, []]))
  for (const [name, run] of runners) {
    const warm = await timed(run)
    if (warm.chunks !== deltas) throw new Error(`${name} saw ${warm.chunks} deltas, expected ${deltas}`)
  }
  for (let i = 0; i < iterations; i++) {
    for (const [name, run] of runners) samples.get(name)!.push(await timed(run))
  }
  await Effect.runPromise(server.close)

  const megabytes = payload.length / 1e6
  console.log(`${deltas} deltas, ${megabytes.toFixed(1)} MB of SSE per run, median of ${iterations} runs (after warm-up)\n`)
  const rates = new Map<string, number>()
  for (const [name] of runners) {
    const times = samples.get(name)!.map((sample) => sample.seconds)
    const seconds = median(times)
    rates.set(name, deltas / seconds)
    console.log(
      `${name.padEnd(36)} ${(deltas / seconds).toFixed(0).padStart(9)} chunks/s ${
        (megabytes / seconds).toFixed(1).padStart(7)
      } MB/s ${(seconds * 1000).toFixed(0).padStart(6)} ms (runs ${
        Math.round(Math.min(...times) * 1000)
      }-${Math.round(Math.max(...times) * 1000)} ms)`
    )
  }
  const [oursRate, floorRate, sdkRate] = runners.map(([name]) => rates.get(name)!)
  const vsSdk = oursRate! / sdkRate!
  const vsFloor = oursRate! / floorRate!
  console.log(`\nours / AI SDK: ${vsSdk.toFixed(2)}× (target ≥ 1.5×) ${vsSdk >= 1.5 ? "ok" : "MISSED"}`)
  console.log(`ours / floor:  ${vsFloor.toFixed(2)}× (target ≥ 0.5×) ${vsFloor >= 0.5 ? "ok" : "MISSED"}`)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
