/**
 * Tool benchmarks, in one run (`npm run bench:tools`, which builds dist/ first: the benchmark
 * loads the package as a user gets it):
 *
 * (a) `tools/call` latency of server-everything's `echo` over Streamable HTTP on 127.0.0.1,
 *     through `McpToolProvider` and through the raw SDK `Client` on the same server, measured in
 *     interleaved rounds so drift hits both alike (target: ours ≤ 1.1× the raw client). A third
 *     row wraps the raw call in the cheapest two-event `Stream`, which separates what the
 *     `Stream<ToolEvent>` contract itself costs from what the provider adds.
 * (b) the cost per event of 10,000 local tool calls through `Toolbox` (µs per event), beside a
 *     plain async function that builds the same two events (the floor of any implementation):
 *     once as 10,000 sequential `execute` streams (a stream per call), once as one
 *     `executeBatch` of all 10,000 calls (one stream; the toolbox's default concurrency of 8);
 *     and read directly (`runForEachChunk`), by the provider itself and by a renamed copy of it
 *     in a toolbox passed through a wrapping Layer, taking turns (they must keep the same path).
 *
 * Options: `--calls N` (default 1000), `--local N` (default 10000).
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as ExecutionContext from "effect-agent-kernel/ExecutionContext"
import type { ToolCall } from "effect-agent-kernel/Message"
import { localTools, tool } from "effect-agent-kernel/LocalTools"
import * as McpTools from "effect-agent-kernel/McpTools"
import * as Toolbox from "effect-agent-kernel/Toolbox"
import { everythingHttp } from "../../test/peers/McpServers.js"

const flag = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(`--${name}`)
  const value = at >= 0 ? Number(process.argv[at + 1]) : fallback
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive whole number`)
  return value
}

const CALLS = flag("calls", 1_000)
const LOCAL_CALLS = flag("local", 10_000)
const WARM_UP = 100
const ROUNDS = 10

interface Summary {
  readonly mean: number
  readonly p50: number
  readonly p99: number
  /** Client CPU per call (set by the caller). */
  readonly cpu?: number
}

const summarize = (samples: ReadonlyArray<number>): Summary => {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
  return { mean: sorted.reduce((sum, x) => sum + x, 0) / sorted.length, p50: at(0.5), p99: at(0.99) }
}

const ms = (x: number) => `${x.toFixed(3)} ms`
const ratio = (ours: number, peer: number) => `${(ours / peer).toFixed(3)}×`

const context = ExecutionContext.make({ contextId: "bench", taskId: "bench", agentId: "bench" })

const mcpLatency = Effect.gen(function*() {
  const { url } = yield* everythingHttp
  const raw = new Client({ name: "bench-raw", version: "1.0.0" })
  yield* Effect.acquireRelease(
    Effect.promise(() => raw.connect(new StreamableHTTPClientTransport(new URL(url)))),
    () => Effect.promise(() => raw.close())
  )
  const provider = yield* McpTools.make({ serverId: "everything", serverUrl: url })

  const rawCall = Effect.promise(() => raw.callTool({ name: "echo", arguments: { message: "bench" } }))
  // The raw call inside the cheapest two-event Stream: what any provider honouring the
  // `Stream<ToolEvent>` contract pays before doing anything of its own.
  const rawInStream = Stream.runDrain(Stream.concat(Stream.succeed("start"), Stream.fromEffect(rawCall)))
  const ourCall = Stream.runDrain(provider.execute({ id: "bench", name: "echo", arguments: { message: "bench" } }, context))
  // The path the agent loop takes: the same provider in a Toolbox, read without a stream.
  const toolbox = yield* Toolbox.make([provider])
  const echoCall = [{ id: "bench", name: "echo", arguments: { message: "bench" } }]
  const viaToolbox = Toolbox.runForEachChunk(toolbox, echoCall, context, undefined, () => Effect.void)
  const variants = { ours: ourCall, viaToolbox, raw: rawCall, rawInStream } as const
  type Variant = keyof typeof variants

  // This process's CPU time per call: unlike wall time, it barely moves when other processes
  // compete for the machine, so it shows the client-side cost even on a busy host.
  const samples: Record<Variant, Array<number>> = { ours: [], viaToolbox: [], raw: [], rawInStream: [] }
  const cpuMs: Record<Variant, number> = { ours: 0, viaToolbox: 0, raw: 0, rawInStream: 0 }
  const block = (variant: Variant, n: number, record: boolean) =>
    Effect.gen(function*() {
      const before = process.cpuUsage()
      for (let i = 0; i < n; i++) {
        const started = performance.now()
        yield* variants[variant]
        if (record) samples[variant].push(performance.now() - started)
      }
      const used = process.cpuUsage(before)
      if (record) cpuMs[variant] += (used.user + used.system) / 1_000
    })

  for (const variant of Object.keys(variants) as Array<Variant>) yield* block(variant, WARM_UP, false)
  const perRound = Math.ceil(CALLS / ROUNDS)
  for (let round = 0; round < ROUNDS; round++) {
    for (const variant of Object.keys(variants) as Array<Variant>) yield* block(variant, perRound, true)
  }
  const result = (variant: Variant) => ({
    ...summarize(samples[variant]),
    cpu: cpuMs[variant] / samples[variant].length
  })
  return {
    ours: result("ours"),
    viaToolbox: result("viaToolbox"),
    raw: result("raw"),
    rawInStream: result("rawInStream"),
    calls: samples.ours.length
  }
}).pipe(Effect.scoped)

interface LocalRun {
  readonly events: number
  readonly wallMs: number
  readonly cpuMs: number
}

const toolboxCost = (mode: "execute" | "executeBatch" | "runForEachChunk", wrapped = false) =>
  Effect.gen(function*() {
    const echo = tool({
      name: "echo",
      description: "Echoes text",
      parameters: Schema.Struct({ text: Schema.String }),
      handler: ({ text }) => Effect.succeed({ text })
    })
    // "wrapped": what a user's code often does — a renamed copy of the provider, and the toolbox
    // service passed through a wrapping Layer of their own (a spread copy with one field changed).
    const provider = wrapped ? { ...localTools([echo]), name: "renamed" } : localTools([echo])
    const made = yield* Toolbox.make([provider])
    const toolbox: Toolbox.Service = wrapped
      ? yield* Effect.provide(
        Toolbox.Toolbox,
        Layer.effect(Toolbox.Toolbox, Effect.map(Toolbox.Toolbox, (inner) => ({ ...inner, getTools: inner.getTools }))).pipe(
          Layer.provide(Layer.succeed(Toolbox.Toolbox, made))
        )
      )
      : made
    let events = 0
    const count = () =>
      Effect.sync(() => {
        events++
      })
    const callsOf = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `bench-${i}`, name: "echo", arguments: { text: "bench" } }))
    const call = callsOf(1)[0]!
    const countAll = (chunk: Chunk.Chunk<unknown>) =>
      Effect.sync(() => {
        events += Chunk.size(chunk)
      })
    const once = mode === "runForEachChunk"
      ? Toolbox.runForEachChunk(toolbox, [call], context, undefined, countAll)
      : Stream.runForEach(toolbox.execute(call, context), count)
    const batch = (calls: ReadonlyArray<ToolCall>) => Stream.runForEach(toolbox.executeBatch(calls, context), count)
    const sequential = mode !== "executeBatch"
    // Warm-up: 1,000 calls the same way.
    yield* sequential ? Effect.repeatN(once, 999) : batch(callsOf(1_000))
    const calls = callsOf(LOCAL_CALLS)
    events = 0
    const cpuBefore = process.cpuUsage()
    const started = performance.now()
    yield* sequential ? Effect.repeatN(once, LOCAL_CALLS - 1) : batch(calls)
    const wallMs = performance.now() - started
    const cpu = process.cpuUsage(cpuBefore)
    return { events, wallMs, cpuMs: (cpu.user + cpu.system) / 1_000 } satisfies LocalRun
  })

/** The floor: the same two events built by a plain async function, as a Promise-based provider would. */
const plainCost = async (): Promise<LocalRun> => {
  const handler = async (args: { text: string }) => ({ text: args.text })
  const execute = async (call: { id: string; name: string; arguments: { text: string } }, emit: (e: unknown) => void) => {
    const base = { contextId: context.contextId, taskId: context.taskId, toolCallId: call.id, toolName: call.name }
    emit({ type: "tool-start", ...base, timestamp: new Date().toISOString(), arguments: call.arguments })
    const result = await handler(call.arguments)
    emit({ type: "tool-complete", ...base, timestamp: new Date().toISOString(), result })
  }
  let events = 0
  const emit = () => {
    events++
  }
  const call = { id: "bench", name: "echo", arguments: { text: "bench" } }
  for (let i = 0; i < 1_000; i++) await execute(call, emit)
  events = 0
  const cpuBefore = process.cpuUsage()
  const started = performance.now()
  for (let i = 0; i < LOCAL_CALLS; i++) await execute(call, emit)
  const wallMs = performance.now() - started
  const cpu = process.cpuUsage(cpuBefore)
  return { events, wallMs, cpuMs: (cpu.user + cpu.system) / 1_000 }
}

const main = Effect.gen(function*() {
  console.log(`(a) tools/call 'echo' on server-everything over Streamable HTTP, ${CALLS} sequential calls each`)
  const latency = yield* mcpLatency
  const row = (cells: ReadonlyArray<string>) => cells.map((cell, i) => (i === 0 ? cell.padEnd(34) : cell.padStart(13))).join("")
  const figures = (s: Summary) => [ms(s.mean), ms(s.p50), ms(s.p99), ms(s.cpu ?? 0)]
  const ratios = (a: Summary, b: Summary) => [
    ratio(a.mean, b.mean),
    ratio(a.p50, b.p50),
    ratio(a.p99, b.p99),
    ratio(a.cpu ?? 0, b.cpu ?? 1)
  ]
  console.log(`    ${row(["", "mean", "p50", "p99", "client CPU"])}`)
  console.log(`    ${row(["McpToolProvider.execute stream", ...figures(latency.ours)])}`)
  console.log(`    ${row(["  via Toolbox.runForEachChunk", ...figures(latency.viaToolbox)])}`)
  console.log(`    ${row(["raw SDK Client (peer)", ...figures(latency.raw)])}`)
  console.log(`    ${row(["raw Client in a 2-event Stream", ...figures(latency.rawInStream)])}`)
  console.log(`    ${row(["ratio execute stream / raw", ...ratios(latency.ours, latency.raw)])}`)
  console.log(`    ${row(["ratio via Toolbox / raw", ...ratios(latency.viaToolbox, latency.raw)])}`)
  console.log(`    ${row(["ratio execute / raw in a Stream", ...ratios(latency.ours, latency.rawInStream)])}`)

  console.log(`\n(b) ${LOCAL_CALLS} local tool calls through Toolbox (tool-start + tool-complete each)`)
  const sequential = yield* toolboxCost("execute")
  // The provider and its wrapped copy take turns, three rounds each; medians are compared.
  const directRounds: Array<LocalRun> = []
  const wrappedRounds: Array<LocalRun> = []
  for (let round = 0; round < 3; round++) {
    directRounds.push(yield* toolboxCost("runForEachChunk"))
    wrappedRounds.push(yield* toolboxCost("runForEachChunk", true))
  }
  const median = (runs: ReadonlyArray<LocalRun>) => [...runs].sort((a, b) => a.wallMs - b.wallMs)[1]!
  const direct = median(directRounds)
  const wrappedCopy = median(wrappedRounds)
  const batched = yield* toolboxCost("executeBatch")
  const plain = yield* Effect.promise(plainCost)
  const perEvent = (r: LocalRun, key: "wallMs" | "cpuMs") => (r[key] * 1_000) / r.events
  const line = (label: string, r: LocalRun) =>
    `    ${label.padEnd(40)}${perEvent(r, "wallMs").toFixed(2).padStart(10)} µs/event wall${
      perEvent(r, "cpuMs").toFixed(2).padStart(10)
    } µs/event CPU   (${r.events} events)`
  const ratioLine = (label: string, r: LocalRun) =>
    `    ${label.padEnd(40)}${ratio(perEvent(r, "wallMs"), perEvent(plain, "wallMs")).padStart(10)} wall${
      ratio(perEvent(r, "cpuMs"), perEvent(plain, "cpuMs")).padStart(20)
    } CPU`
  console.log(line("Toolbox.execute, one call at a time (ours)", sequential))
  console.log(line("Toolbox.runForEachChunk, one at a time", direct))
  console.log(line("  the same, wrapped provider and toolbox", wrappedCopy))
  console.log(line("Toolbox.executeBatch, all calls (ours)", batched))
  console.log(line("plain async function (peer)", plain))
  console.log(ratioLine("ratio execute / plain", sequential))
  console.log(ratioLine("ratio runForEachChunk / plain", direct))
  console.log(ratioLine("ratio executeBatch / plain", batched))
  const wrappedRatio = perEvent(wrappedCopy, "wallMs") / perEvent(direct, "wallMs")
  console.log(
    `    ${"ratio wrapped / provider (median of 3)".padEnd(40)}${`${wrappedRatio.toFixed(3)}×`.padStart(10)} wall` +
      `   (target ≤ 1.1×: ${wrappedRatio <= 1.1 ? "met" : "missed"})`
  )
})

Effect.runPromise(main).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
