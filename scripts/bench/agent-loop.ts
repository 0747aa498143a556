/**
 * Benchmark: the agent loop against a local OpenAI-compatible server that answers at once.
 *
 * A five-step tool loop (the model calls the local tool `add` four times, then answers) run by
 *   (a) a floor: plain `fetch` making the same streaming HTTP exchanges, parsing only what it must,
 *   (b) `Agent.run` (ours),
 *   (c) the Vercel AI SDK's `generateText` with the same tool and a five-step stop condition,
 *   (d) `Agent.run` with the model chosen by the `TierRouter` (what `scripts/chat.ts` runs),
 *   (e) our stack's floor: the same exchanges as (a) through the platform's `HttpClient` inside an
 *       Effect `Stream` run by `Stream.runDrain` (no kernel code): what the kernel cannot go below.
 * Time per step is measured after a few seconds of warm-up (steady state), as the median of five
 * rounds in which the variants take turns, each in a fresh process. Then scaling: 1, 10, 100 and 1,000 concurrent runs (the server delays each answer a
 * little so runs overlap) — runs per second and peak RSS for ours and the AI SDK. Peak RSS also
 * counts garbage not yet collected, so last comes live memory: the heap after a full collection
 * while 100 or 1,000 runs all wait on a slow answer, per run (ours, the AI SDK's and our stack's floor).
 *
 * The server lives in this process; every client variant runs in its own child process, so
 * memory figures are that client's alone. Our variants load the package as a user gets it: the
 * JavaScript `tsc` builds into `dist/` (built first, so the figures are for the current sources),
 * as the AI SDK's variant loads its published JavaScript.
 *
 * Usage: npm run bench:agent-loop [-- --quick]   (or npx tsx scripts/bench/agent-loop.ts)
 */
import { execFileSync, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import * as OpenAiServer from "../../test/peers/OpenAiServer.js"

const self = fileURLToPath(import.meta.url)
const quick = process.argv.includes("--quick")
const toolSteps = 4
const steps = toolSteps + 1

type Variant = "floor" | "effectFloor" | "ours" | "routed" | "aisdk"

// ---------------------------------------------------------------- server

const answer = (request: OpenAiServer.RecordedRequest, delayMs: number): OpenAiServer.Step => {
  const messages: ReadonlyArray<{ role: string }> = request.body?.messages ?? []
  const done = messages.filter((message) => message.role === "tool").length
  const streamed = request.body?.stream === true
  const usage = OpenAiServer.usage(20, 5)
  if (done < toolSteps) {
    const call = { id: `call_${done}`, name: "add", arguments: { a: done, b: 1 } }
    return streamed
      ? OpenAiServer.sse(OpenAiServer.toolCallChunks([call], { usage }), { delayMs })
      : OpenAiServer.json(OpenAiServer.toolCallCompletion([call], { usage }), { delayMs })
  }
  return streamed
    ? OpenAiServer.sse(OpenAiServer.textChunks(["The ", "sum ", "is ", "4."], { usage }), { delayMs })
    : OpenAiServer.json(OpenAiServer.textCompletion("The sum is 4.", { usage }), { delayMs })
}

// ---------------------------------------------------------------- clients (child processes)

type RunOnce = () => Promise<void>

const addSchema = {
  type: "object",
  properties: { a: { type: "number" }, b: { type: "number" } },
  required: ["a", "b"],
  additionalProperties: false
}

const floorTools = [{ type: "function", function: { name: "add", description: "Adds a and b.", parameters: addSchema } }]
const floorBody = (messages: ReadonlyArray<Record<string, unknown>>) =>
  JSON.stringify({ model: "bench", messages, tools: floorTools, stream: true, stream_options: { include_usage: true } })

/**
 * One exchange of the floors: reads a streamed answer, parsing only what it must, and appends
 * the assistant's tool calls and their results to `messages`; `false` when the model is done.
 */
const floorStep = (messages: Array<Record<string, unknown>>, text: string): boolean => {
  let content = ""
  const calls: Array<{ id: string; name: string; args: string }> = []
  for (const line of text.split("\n")) {
    if (!line.startsWith("data: ") || line === "data: [DONE]") continue
    const delta = JSON.parse(line.slice(6)).choices?.[0]?.delta
    if (delta?.content) content += delta.content
    for (const fragment of delta?.tool_calls ?? []) {
      const call = calls[fragment.index] ??= { id: fragment.id, name: fragment.function.name, args: "" }
      call.args += fragment.function?.arguments ?? ""
    }
  }
  if (calls.length === 0) return false
  messages.push({
    role: "assistant",
    content: content || null,
    tool_calls: calls.map((call) => ({ id: call.id, type: "function", function: { name: call.name, arguments: call.args } }))
  })
  for (const call of calls) {
    const { a, b } = JSON.parse(call.args)
    messages.push({ role: "tool", tool_call_id: call.id, content: JSON.stringify({ sum: a + b }) })
  }
  return true
}

const floorClient = (url: string): RunOnce => async () => {
  const messages: Array<Record<string, unknown>> = [{ role: "user", content: "Add the numbers." }]
  for (let step = 0; step < 10; step++) {
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer bench" },
      body: floorBody(messages)
    })
    if (!floorStep(messages, await response.text())) return
  }
}

/**
 * The floor of our stack, without any kernel code: the same exchanges as the fetch floor, made
 * by the platform's `HttpClient` (`NodeHttpClient.layerUndici`, what the kernel's providers use)
 * inside an Effect `Stream` (one element per exchange) run by `Stream.runDrain`, as `Agent.run`'s
 * stream is. DESIGN.md names both (the platform client; a run as a `Stream`), so what this costs,
 * the kernel cannot go below.
 */
const effectFloorClient = async (url: string): Promise<RunOnce> => {
  const [{ NodeHttpClient }, Effect, ManagedRuntime, Option, Stream, HttpClient, HttpClientRequest] = await Promise.all([
    import("@effect/platform-node"),
    import("effect/Effect"),
    import("effect/ManagedRuntime"),
    import("effect/Option"),
    import("effect/Stream"),
    import("@effect/platform/HttpClient"),
    import("@effect/platform/HttpClientRequest")
  ])
  const runtime = ManagedRuntime.make(NodeHttpClient.layerUndici)
  const client = await runtime.runPromise(HttpClient.HttpClient)
  const post = HttpClientRequest.post(`${url}/v1/chat/completions`).pipe(HttpClientRequest.bearerToken("bench"))
  const run = () => {
    const messages: Array<Record<string, unknown>> = [{ role: "user", content: "Add the numbers." }]
    return Stream.runDrain(Stream.unfoldEffect(true, (more) =>
      more
        ? Effect.map(
          Effect.flatMap(client.execute(HttpClientRequest.bodyText(post, floorBody(messages), "application/json")), (response) => response.text),
          (text) => Option.some([text.length, floorStep(messages, text)] as const)
        )
        : Effect.succeed(Option.none())
    ))
  }
  return () => runtime.runPromise(run())
}

/** The local tool both of our variants offer. */
const addTool = async () => {
  const [Effect, Schema, LocalTools] = await Promise.all([
    import("effect/Effect"),
    import("effect/Schema"),
    import("effect-agent-kernel/LocalTools")
  ])
  return LocalTools.tool({
    name: "add",
    description: "Adds a and b.",
    parameters: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
    handler: ({ a, b }) => Effect.succeed({ sum: a + b })
  })
}

const oursClient = async (url: string): Promise<RunOnce> => {
  const [{ NodeHttpClient }, Effect, Layer, ManagedRuntime, Redacted, Stream, Agent, LocalTools, OpenAiCompatible, Toolbox] =
    await Promise.all([
      import("@effect/platform-node"),
      import("effect/Effect"),
      import("effect/Layer"),
      import("effect/ManagedRuntime"),
      import("effect/Redacted"),
      import("effect/Stream"),
      import("effect-agent-kernel/Agent"),
      import("effect-agent-kernel/LocalTools"),
      import("effect-agent-kernel/OpenAiCompatible"),
      import("effect-agent-kernel/Toolbox")
    ])
  const add = await addTool()
  const live = Layer.mergeAll(
    OpenAiCompatible.liteLLMProvider({ model: "bench", baseUrl: url, apiKey: Redacted.make("bench") }),
    Toolbox.layer([LocalTools.localTools([add])])
  ).pipe(Layer.provide(NodeHttpClient.layerUndici))
  const runtime = ManagedRuntime.make(live)
  await runtime.runPromise(Effect.void)
  return () => runtime.runPromise(Stream.runDrain(Agent.run({ prompt: "Add the numbers.", maxSteps: 10 })))
}

// The same agent with the model chosen by the TierRouter (config in memory, the litellm plugin
// on every tier): what `scripts/chat.ts` runs. No peer has an equivalent; it is compared with ours.
const routedClient = async (url: string): Promise<RunOnce> => {
  const [{ NodeHttpClient }, Effect, Layer, ManagedRuntime, Stream, agent, local, toolbox, config, secrets, plugins, builtin, classifier, router] =
    await Promise.all([
      import("@effect/platform-node"),
      import("effect/Effect"),
      import("effect/Layer"),
      import("effect/ManagedRuntime"),
      import("effect/Stream"),
      import("effect-agent-kernel/Agent"),
      import("effect-agent-kernel/LocalTools"),
      import("effect-agent-kernel/Toolbox"),
      import("effect-agent-kernel/ConfigManager"),
      import("effect-agent-kernel/SecretsManager"),
      import("effect-agent-kernel/ProviderPlugin"),
      import("effect-agent-kernel/BuiltinPlugins"),
      import("effect-agent-kernel/QueryClassifier"),
      import("effect-agent-kernel/TierRouter")
    ])
  const add = await addTool()
  const base = Layer.mergeAll(
    config.layerMemory({
      plugins: { enabled: ["litellm"] },
      routing: { tierMapping: { simple: "litellm", moderate: "litellm", complex: "litellm", reasoning: "litellm" } },
      providers: { litellm: { baseUrl: url, model: "bench" } }
    }),
    secrets.layerMemoryWith({ envFallback: false, initial: { "provider.litellm.apiKey": "bench" } }),
    NodeHttpClient.layerUndici
  )
  const registry = plugins.layer({ builtins: builtin.builtins }).pipe(Layer.provideMerge(base))
  const live = Layer.mergeAll(router.layer, toolbox.layer([local.localTools([add])])).pipe(
    Layer.provide(Layer.merge(registry, classifier.layer))
  )
  const runtime = ManagedRuntime.make(live)
  await runtime.runPromise(Effect.void)
  return () => runtime.runPromise(Stream.runDrain(agent.run({ prompt: "Add the numbers.", maxSteps: 10 })))
}

const aiSdkClient = async (url: string): Promise<RunOnce> => {
  const { generateText, jsonSchema, stepCountIs, tool } = await import("ai")
  const { createOpenAI } = await import("@ai-sdk/openai")
  const model = createOpenAI({ baseURL: `${url}/v1`, apiKey: "bench" }).chat("bench")
  const tools = {
    add: tool({
      description: "Adds a and b.",
      inputSchema: jsonSchema<{ a: number; b: number }>(addSchema as never),
      execute: async ({ a, b }: { a: number; b: number }) => ({ sum: a + b })
    })
  }
  return async () => {
    await generateText({ model, tools, stopWhen: stepCountIs(steps), prompt: "Add the numbers.", maxRetries: 0 })
  }
}

const makeClient = (variant: Variant, url: string): Promise<RunOnce> =>
  variant === "floor"
    ? Promise.resolve(floorClient(url))
    : variant === "effectFloor"
    ? effectFloorClient(url)
    : variant === "ours"
    ? oursClient(url)
    : variant === "routed"
    ? routedClient(url)
    : aiSdkClient(url)

interface ChildResult {
  readonly variant: Variant
  readonly mode: Mode
  readonly concurrency: number
  readonly usPerStep?: number
  readonly runsPerSecond?: number
  readonly peakRssMb?: number
  readonly baselineRssMb?: number
  readonly kbPerRun?: number
  readonly liveKbPerRun?: number
}

type Mode = "latency" | "scale" | "heap"

const child = async (variant: Variant, mode: Mode, url: string, concurrency: number) => {
  const runOnce = await makeClient(variant, url)
  // Warm-up. Against the slow server of the heap measurement, one batch at once rather than in turn.
  if (mode === "heap") await Promise.all(Array.from({ length: 20 }, () => runOnce()))
  else for (let i = 0; i < 30; i++) await runOnce()
  if (mode === "latency") {
    // Steady state: every variant first runs for a few seconds, until the JIT has settled (the
    // first few hundred runs of each are up to twice as slow, ours and the AI SDK's alike).
    const warmUntil = performance.now() + (quick ? 1_500 : 4_000)
    while (performance.now() < warmUntil) await runOnce()
    const iterations = quick ? 50 : 300
    const start = performance.now()
    for (let i = 0; i < iterations; i++) await runOnce()
    const elapsed = performance.now() - start
    return { variant, mode, concurrency: 1, usPerStep: (elapsed * 1000) / (iterations * steps) } satisfies ChildResult
  }
  const gc = (globalThis as { gc?: () => void }).gc
  if (mode === "heap") {
    // Live memory: a full collection while every run is in flight (each waits on the server's
    // delayed answer), compared with one before they started.
    gc?.()
    gc?.()
    const before = process.memoryUsage().heapUsed
    const all = Promise.all(Array.from({ length: concurrency }, () => runOnce()))
    await new Promise((resolve) => setTimeout(resolve, 700))
    gc?.()
    gc?.()
    const during = process.memoryUsage().heapUsed
    await all
    return { variant, mode, concurrency, liveKbPerRun: (during - before) / 1024 / concurrency } satisfies ChildResult
  }
  gc?.()
  await new Promise((resolve) => setTimeout(resolve, 50))
  const baseline = process.memoryUsage().rss
  let peak = baseline
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss)
  }, 2)
  const start = performance.now()
  await Promise.all(Array.from({ length: concurrency }, () => runOnce()))
  const elapsed = performance.now() - start
  clearInterval(sampler)
  peak = Math.max(peak, process.memoryUsage().rss)
  return {
    variant,
    mode,
    concurrency,
    runsPerSecond: concurrency / (elapsed / 1000),
    peakRssMb: peak / 2 ** 20,
    baselineRssMb: baseline / 2 ** 20,
    kbPerRun: (peak - baseline) / 1024 / concurrency
  } satisfies ChildResult
}

// ---------------------------------------------------------------- parent

const runChild = (args: ReadonlyArray<string>): Promise<ChildResult> =>
  new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ["--expose-gc", "--import", "tsx", self, "--child", ...args, ...(quick ? ["--quick"] : [])], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    proc.stdout.on("data", (chunk) => (out += chunk))
    proc.on("exit", (code) => {
      const line = out.trim().split("\n").at(-1) ?? ""
      code === 0 ? resolve(JSON.parse(line)) : reject(new Error(`child ${args.join(" ")} exited with ${code}: ${out}`))
    })
  })

/** Builds `dist/` from the current sources (`npm run build`), which our variants import. */
const build = () => {
  const root = fileURLToPath(new URL("../../", import.meta.url))
  const tsc = fileURLToPath(new URL("../../node_modules/typescript/bin/tsc", import.meta.url))
  execFileSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" })
}

const main = async () => {
  build()
  // `record: false`: the servers answer a few hundred thousand requests; kept, they would grow
  // this process's heap by hundreds of MB and stall the answers with its collections.
  const fast = await OpenAiServer.listen({ script: (request) => answer(request, 0), record: false })
  const slow = await OpenAiServer.listen({ script: (request) => answer(request, 25), record: false })
  // For live memory: answers take a second, so every run has started and none has finished
  // when the heap is measured.
  const held = await OpenAiServer.listen({ script: (request) => answer(request, 1_000), record: false })
  try {
    console.log(`agent-loop benchmark: ${steps} model calls per run (${toolSteps} with a tool call), node ${process.version}`)
    try {
      console.log(`cpu: ${execFileSync("nproc").toString().trim()} cores`)
    } catch {
      // nproc is informational only
    }
    // Five rounds (three with --quick), the variants taking turns, each in a fresh process; the
    // median round counts. On a shared 2-core machine one long block per variant drifts with
    // whatever else runs.
    const roundCount = quick ? 3 : 5
    const variants = ["floor", "effectFloor", "ours", "routed", "aisdk"] as const
    const rounds: Record<Variant, Array<number>> = { floor: [], effectFloor: [], ours: [], routed: [], aisdk: [] }
    for (let round = 0; round < roundCount; round++) {
      for (const variant of variants) {
        rounds[variant].push((await runChild([variant, "latency", fast.url, "1"])).usPerStep!)
      }
    }
    const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    const latency: Record<Variant, number> = {
      floor: median(rounds.floor),
      effectFloor: median(rounds.effectFloor),
      ours: median(rounds.ours),
      routed: median(rounds.routed),
      aisdk: median(rounds.aisdk)
    }
    console.log(`\n== time per step (sequential runs after warm-up, server answers at once; median of ${roundCount} rounds)`)
    for (const variant of variants) {
      console.log(`rounds ${variant.padEnd(11)} ${rounds[variant].map((x) => x.toFixed(0).padStart(6)).join(" ")} µs/step`)
    }
    console.log(`floor (fetch + line splitter):   ${latency.floor.toFixed(1)} µs/step`)
    console.log(
      `our stack's floor:               ${latency.effectFloor.toFixed(1)} µs/step   ` +
        `(the same exchanges through the platform HttpClient in an Effect Stream, no kernel code; ` +
        `${(latency.effectFloor / latency.aisdk).toFixed(2)}× the AI SDK)`
    )
    console.log(`ours (Agent.run):                ${latency.ours.toFixed(1)} µs/step`)
    console.log(`Vercel AI SDK (generateText):    ${latency.aisdk.toFixed(1)} µs/step`)
    console.log(
      `ours through the TierRouter:     ${latency.routed.toFixed(1)} µs/step   ` +
        `(+${(latency.routed - latency.ours).toFixed(0)} µs/step for routing; no peer equivalent)`
    )
    const overhead = latency.ours - latency.floor
    const ratio = latency.ours / latency.aisdk
    console.log(`our overhead over the floor:     ${overhead.toFixed(1)} µs/step   (target ≤ 300)  ${overhead <= 300 ? "OK" : "MISSED"}`)
    console.log(`ours / AI SDK:                   ${ratio.toFixed(2)}×          (target ≤ 0.80) ${ratio <= 0.8 ? "OK" : "MISSED"}`)

    console.log("\n== scaling (server delays each answer 25 ms)")
    console.log("runs   | ours runs/s | AI SDK runs/s | ours peak RSS | AI SDK peak RSS | ours KB/run | AI SDK KB/run")
    for (const concurrency of quick ? [1, 10, 100] : [1, 10, 100, 1000]) {
      const ours = await runChild(["ours", "scale", slow.url, String(concurrency)])
      const sdk = await runChild(["aisdk", "scale", slow.url, String(concurrency)])
      console.log(
        `${String(concurrency).padEnd(6)} | ${ours.runsPerSecond!.toFixed(0).padStart(11)} | ${sdk.runsPerSecond!.toFixed(0).padStart(13)} | ` +
          `${ours.peakRssMb!.toFixed(1).padStart(10)} MB | ${sdk.peakRssMb!.toFixed(1).padStart(12)} MB | ` +
          `${ours.kbPerRun!.toFixed(1).padStart(11)} | ${sdk.kbPerRun!.toFixed(1).padStart(13)}` +
          // At low counts the growth is below the RSS's page granularity and often 0.
          (sdk.kbPerRun! > 0 ? `   (ratio ${(ours.kbPerRun! / sdk.kbPerRun!).toFixed(2)}×)` : "")
      )
    }
    console.log("\n== live memory per in-flight run (heap after a full GC, all runs waiting on the server)")
    console.log("runs   | ours KB/run | AI SDK KB/run | ratio | our stack's floor KB/run | floor / AI SDK")
    for (const concurrency of quick ? [100] : [100, 1000]) {
      const ours = await runChild(["ours", "heap", held.url, String(concurrency)])
      const sdk = await runChild(["aisdk", "heap", held.url, String(concurrency)])
      const floor = await runChild(["effectFloor", "heap", held.url, String(concurrency)])
      console.log(
        `${String(concurrency).padEnd(6)} | ${ours.liveKbPerRun!.toFixed(1).padStart(11)} | ${sdk.liveKbPerRun!.toFixed(1).padStart(13)} | ` +
          `${(ours.liveKbPerRun! / sdk.liveKbPerRun!).toFixed(2)}× | ${floor.liveKbPerRun!.toFixed(1).padStart(24)} | ` +
          `${(floor.liveKbPerRun! / sdk.liveKbPerRun!).toFixed(2)}×`
      )
    }
    console.log("targets: memory per in-flight run ≤ 100 KB, and below the AI SDK's at every level")
    console.log(
      "our stack's floor: the platform HttpClient's request in flight inside an Effect Stream run by Stream.runDrain, " +
        "no kernel code (see effectFloorClient)"
    )
  } finally {
    await Promise.all([fast.close, slow.close, held.close].map((close) => import("effect/Effect").then((Effect) => Effect.runPromise(close))))
  }
}

if (process.argv.includes("--child")) {
  const [variant, mode, url, concurrency] = process.argv.slice(process.argv.indexOf("--child") + 1)
  child(variant as Variant, mode as Mode, url!, Number(concurrency)).then(
    (result) => {
      console.log(JSON.stringify(result))
      process.exit(0)
    },
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
} else {
  main().catch((error) => {
    console.error(error)
    process.exit(1)
  })
}
