/**
 * Benchmark: the agent loop against a local OpenAI-compatible server that answers at once.
 *
 * A five-step tool loop (the model calls the local tool `add` four times, then answers) run by
 *   (a) a floor: plain `fetch` making the same streaming HTTP exchanges, parsing only what it must,
 *   (b) `Agent.run` (ours),
 *   (c) the Vercel AI SDK's `generateText` with the same tool and a five-step stop condition,
 *   (d) the Vercel AI SDK's `streamText`, the same, its `fullStream` read to the end: the AI SDK's
 *       like-for-like of `Agent.run`, which streams,
 *   (e) `Agent.run` with the model chosen by the `TierRouter` (what `scripts/chat.ts` runs),
 *   (f) our stack's floor: the same exchanges as (a) through the platform's `HttpClient` inside an
 *       Effect `Stream` run by `Stream.runDrain` (no kernel code): what the kernel cannot go below.
 * Time per step is measured after a few seconds of warm-up (steady state), as the median of five
 * rounds in which the variants take turns, each in a fresh process; ratios are taken within a
 * round (the variants ran seconds apart) and reported as their median and range. Then
 * scaling: 1, 10, 100 and 1,000 concurrent runs (the server delays each answer a little so runs
 * overlap) — runs per second, client and server CPU per run, GC time and peak RSS for ours and
 * both AI SDK variants. Peak RSS also counts garbage not yet collected, so last comes live
 * memory: the heap after a full collection while 100 or 1,000 runs all wait on a slow first
 * answer, per run (ours, the AI SDK's two and our stack's floor). Then the targets, met or not.
 *
 * The server lives in this process; every client variant runs in its own child process
 * (`agent-loop/child.ts`), so memory and CPU figures are that client's alone. Our variants load the package as a user gets it: the
 * JavaScript `tsc` builds into `dist/` (built first when a source is newer, so the figures are
 * for the current sources), as the AI SDK's variants load its published JavaScript.
 *
 * Usage: npm run bench:agent-loop [-- --quick]   (or npx tsx scripts/bench/agent-loop.ts)
 *
 * `--profile [--variants ours,aisdk] [--concurrency 100,1000]` runs only the scaling measurement
 * of the named variants, each child under the V8 CPU profiler for the measured batch, and prints
 * where each run's time goes at each concurrency (self time by function and package, GC) and
 * what grew between the lowest and the highest (see `cpuProfile.ts`); the profiles are kept
 * under `tmp/bench-profiles/`. `--no-build` reuses the `dist/` there is.
 */
import { execFileSync } from "node:child_process"
import { existsSync, readdirSync, statSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as OpenAiServer from "../../test/peers/OpenAiServer.js"
import type { Mode } from "./agent-loop/child.js"
import { labels, steps, toolSteps, type Variant, variants } from "./agent-loop/clients.js"
import { profile } from "./agent-loop/profile.js"
import { answer, type Measured, runChild } from "./agent-loop/parent.js"

const quick = process.argv.includes("--quick")

const option = (name: string): string | undefined => {
  const at = process.argv.indexOf(name)
  return at >= 0 ? process.argv[at + 1] : undefined
}

const root = fileURLToPath(new URL("../../", import.meta.url))

/** Whether some `src/**.ts` is newer than the `dist/**.js` built from it (or that is missing). */
const distIsStale = (): boolean => {
  const sources = readdirSync(join(root, "src"), { recursive: true, encoding: "utf8" }).filter((file) => file.endsWith(".ts"))
  return sources.some((file) => {
    const built = join(root, "dist", file.replace(/\.ts$/, ".js"))
    return !existsSync(built) || statSync(join(root, "src", file)).mtimeMs > statSync(built).mtimeMs
  })
}

/**
 * Builds `dist/` from the current sources (`npm run build`), which our variants import, unless
 * it is already newer than every source; `--no-build` uses the `dist/` there is.
 */
const build = () => {
  if (process.argv.includes("--no-build") || !distIsStale()) return
  const tsc = fileURLToPath(new URL("../../node_modules/typescript/bin/tsc", import.meta.url))
  execFileSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" })
}

const run = (variant: Variant, mode: Mode, url: string, concurrency: number) =>
  runChild([variant, mode, url, String(concurrency)], { quick })

// ---------------------------------------------------------------- figures

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const range = (xs: ReadonlyArray<number>, digits: number) =>
  xs.length < 2 ? "" : `${Math.min(...xs).toFixed(digits)} to ${Math.max(...xs).toFixed(digits)}`
/** "median (min to max)" of a series. */
const spread = (xs: ReadonlyArray<number>, digits: number) => {
  const r = range(xs, digits)
  return `${median(xs).toFixed(digits)}${r ? ` (${r})` : ""}`
}
/** Ratios of two series taken round by round: the two ran closest in time in the same round. */
const ratios = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) => a.map((x, i) => x / b[i]!)
const differences = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) => a.map((x, i) => x - b[i]!)

interface Target {
  readonly name: string
  readonly figure: string
  readonly met: boolean | undefined
}
const targets: Array<Target> = []
/** Records a target for the summary; returns whether it was met, for the line that shows the figure. */
const judge = (name: string, figure: string, met: boolean | undefined) => {
  targets.push({ name, figure, met })
  return met === undefined ? "(not measured)" : met ? "MET" : "MISSED"
}

// ---------------------------------------------------------------- latency

const latencyRounds = async (url: string) => {
  // Five rounds (three with --quick), the variants taking turns, each in a fresh process; the
  // median round counts. On a shared 2-core machine one long block per variant drifts with
  // whatever else runs.
  const roundCount = quick ? 3 : 5
  const rounds = Object.fromEntries(variants.map((variant) => [variant, [] as Array<number>])) as Record<Variant, Array<number>>
  for (let round = 0; round < roundCount; round++) {
    for (const variant of variants) rounds[variant].push((await run(variant, "latency", url, 1)).usPerStep!)
  }
  console.log(`\n== time per step (sequential runs after warm-up, server answers at once; median of ${roundCount} rounds, range)`)
  for (const variant of variants) {
    console.log(`${labels[variant].padEnd(22)} ${spread(rounds[variant], 0).padEnd(20)} µs/step   rounds: ${rounds[variant].map((x) => x.toFixed(0)).join(" ")}`)
  }
  const vsStream = ratios(rounds.ours, rounds.aisdkStream)
  const vsGenerate = ratios(rounds.ours, rounds.aisdk)
  const overFloor = differences(rounds.ours, rounds.floor)
  console.log(`ratios round by round (median, range):`)
  console.log(`  ours / AI SDK streamText:      ${spread(vsStream, 2)}×   target ≤ 0.50  ` + judge("time per step, ours / streamText ≤ 0.5×", `${spread(vsStream, 2)}×`, median(vsStream) <= 0.5))
  console.log(`  ours / AI SDK generateText:    ${spread(vsGenerate, 2)}×   target ≤ 1.00  ` + judge("time per step, ours / generateText ≤ 1.0×", `${spread(vsGenerate, 2)}×`, median(vsGenerate) <= 1))
  console.log(`  ours − fetch floor:            ${spread(overFloor, 0)} µs/step   target ≤ 300  ` + judge("time per step, ours − fetch floor ≤ 300 µs", `${spread(overFloor, 0)} µs`, median(overFloor) <= 300))
  console.log(`  our stack's floor / generateText: ${spread(ratios(rounds.effectFloor, rounds.aisdk), 2)}×;  streamText / generateText: ${spread(ratios(rounds.aisdkStream, rounds.aisdk), 2)}×`)
  console.log(`  TierRouter − ours:             ${spread(differences(rounds.routed, rounds.ours), 0)} µs/step (routing; no peer equivalent)`)
}

// ---------------------------------------------------------------- scaling

const scaleVariants = ["ours", "aisdk", "aisdkStream"] as const

const scaling = async (url: string) => {
  console.log("\n== scaling (server delays each answer 25 ms; a batch of N concurrent runs; median (range) of rounds)")
  console.log(
    "   per run, during the batch: client CPU (all threads), GC pauses (scavenges / mark-compacts), server CPU; " +
      "cores: the client's CPU / wall time (below 1 with an event loop never idle (ELU 1): other processes held it back, " +
      "and its runs/s with it); conns: connections the client opened"
  )
  const levels = quick ? [1, 10, 100] : [1, 10, 100, 1000]
  for (const concurrency of levels) {
    const roundCount = quick || concurrency < 100 ? 1 : 3
    const results: Record<(typeof scaleVariants)[number], Array<Measured>> = { ours: [], aisdk: [], aisdkStream: [] }
    for (let round = 0; round < roundCount; round++) {
      for (const variant of scaleVariants) results[variant].push(await run(variant, "scale", url, concurrency))
    }
    console.log(`-- ${concurrency} concurrent run${concurrency === 1 ? "" : "s"} (${roundCount} round${roundCount === 1 ? "" : "s"})`)
    for (const variant of scaleVariants) {
      const rs = results[variant]
      const of = (pick: (m: Measured) => number, digits: number) => spread(rs.map(pick), digits)
      console.log(
        `${labels[variant].padEnd(20)} ${of((m) => m.runsPerSecond!, 0)} runs/s | CPU ${of((m) => m.cpuMsPerRun!, 2)} ms, ` +
          `cores ${of((m) => m.cores!, 2)}, ELU ${of((m) => m.elu!, 2)} | ` +
          `GC ${of((m) => m.scavengeMsPerRun!, 2)} / ${of((m) => m.markCompactMsPerRun!, 2)} ms | ` +
          `server CPU ${of((m) => m.serverCpuMsPerRun ?? NaN, 2)} ms, ELU ${of((m) => m.serverElu ?? NaN, 2)} | ` +
          `${of((m) => m.requestsPerRun ?? NaN, 2)} req/run, ${of((m) => m.connections ?? NaN, 0)} conns | ` +
          `peak RSS ${of((m) => m.peakRssMb!, 1)} MB, ${of((m) => m.kbPerRun!, 1)} KB/run`
      )
    }
    const perSecond = (variant: (typeof scaleVariants)[number]) => results[variant].map((m) => m.runsPerSecond!)
    const cpu = (variant: (typeof scaleVariants)[number]) => results[variant].map((m) => m.cpuMsPerRun!)
    const vsGenerate = ratios(perSecond("ours"), perSecond("aisdk"))
    const line = `runs/s ours / generateText ${spread(vsGenerate, 2)}×, ours / streamText ${spread(ratios(perSecond("ours"), perSecond("aisdkStream")), 2)}×; ` +
      `CPU per run ours / generateText ${spread(ratios(cpu("ours"), cpu("aisdk")), 2)}×, ours / streamText ${spread(ratios(cpu("ours"), cpu("aisdkStream")), 2)}×`
    console.log(line)
    if (concurrency === 1000) {
      console.log(
        `target at 1,000: runs/s ours / generateText ≥ 1.0  ` +
          judge("runs/s at 1,000 concurrent, ours / generateText ≥ 1.0×", `${spread(vsGenerate, 2)}×`, median(vsGenerate) >= 1)
      )
    }
  }
  if (quick) judge("runs/s at 1,000 concurrent, ours / generateText ≥ 1.0×", "— (--quick stops at 100)", undefined)
}

// ---------------------------------------------------------------- live heap

const heapVariants = ["ours", "effectFloor", "aisdk", "aisdkStream"] as const

const liveHeap = async (url: string) => {
  console.log("\n== live memory per in-flight run (heap after a full GC, all runs waiting on the server; median (range) of rounds)")
  for (const concurrency of quick ? [100] : [100, 1000]) {
    const roundCount = quick ? 1 : 2
    const kb: Record<(typeof heapVariants)[number], Array<number>> = { ours: [], effectFloor: [], aisdk: [], aisdkStream: [] }
    for (let round = 0; round < roundCount; round++) {
      for (const variant of heapVariants) kb[variant].push((await run(variant, "heap", url, concurrency)).liveKbPerRun!)
    }
    console.log(`-- ${concurrency} runs in flight (${roundCount} round${roundCount === 1 ? "" : "s"})`)
    for (const variant of heapVariants) console.log(`${labels[variant].padEnd(22)} ${spread(kb[variant], 1)} KB/run`)
    const overFloor = differences(kb.ours, kb.effectFloor)
    console.log(
      `ours − our stack's floor:  ${spread(overFloor, 1)} KB/run   target ≤ 10  ` +
        judge(`live heap at ${concurrency}, ours − our stack's floor ≤ 10 KB`, `${spread(overFloor, 1)} KB`, median(overFloor) <= 10)
    )
    console.log(
      `ours / generateText ${spread(ratios(kb.ours, kb.aisdk), 2)}×, ours / streamText ${spread(ratios(kb.ours, kb.aisdkStream), 2)}×, ` +
        `our stack's floor / generateText ${spread(ratios(kb.effectFloor, kb.aisdk), 2)}×; ` +
        `ours ≤ 100 KB: ${median(kb.ours) <= 100 ? "yes" : "no"}`
    )
  }
  console.log(
    "our stack's floor: the platform HttpClient's request in flight inside an Effect Stream run by Stream.runDrain, " +
      "no kernel code (see effectFloorClient)"
  )
}

// ---------------------------------------------------------------- main

const main = async () => {
  build()
  // `record: false`: the servers answer a few hundred thousand requests; kept, they would grow
  // this process's heap by hundreds of MB and stall the answers with its collections.
  const fast = await OpenAiServer.listen({ script: (request) => answer(request, 0), record: false })
  const slow = await OpenAiServer.listen({ script: (request) => answer(request, 25), record: false })
  // For live memory: a run's first answer takes a second, so every run has started and none
  // has finished when the heap is measured; the later answers come at once.
  const held = await OpenAiServer.listen({ script: (request) => answer(request, 1_000, { firstStepOnly: true }), record: false })
  try {
    console.log(`agent-loop benchmark: ${steps} model calls per run (${toolSteps} with a tool call), node ${process.version}`)
    try {
      console.log(`cpu: ${execFileSync("nproc").toString().trim()} cores`)
    } catch {
      // nproc is informational only
    }
    if (process.argv.includes("--profile")) {
      const list = (name: string, fallback: string) => (option(name) ?? fallback).split(",")
      await profile({
        url: slow.url,
        variants: list("--variants", "ours,aisdk") as Array<Variant>,
        concurrencies: list("--concurrency", "100,1000").map(Number)
      })
      return
    }
    const timed = async (section: () => Promise<void>) => {
      const start = performance.now()
      await section()
      console.log(`(${((performance.now() - start) / 1000).toFixed(0)} s)`)
    }
    await timed(() => latencyRounds(fast.url))
    await timed(() => scaling(slow.url))
    await timed(() => liveHeap(held.url))
    console.log("\n== targets")
    for (const { name, figure, met } of targets) {
      console.log(`${(met === undefined ? "—" : met ? "MET" : "MISSED").padEnd(7)} ${name}: ${figure}`)
    }
  } finally {
    await Promise.all([fast.close, slow.close, held.close].map((close) => import("effect/Effect").then((Effect) => Effect.runPromise(close))))
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
