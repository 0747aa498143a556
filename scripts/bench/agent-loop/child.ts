/**
 * The agent-loop benchmark's measurements, each made by one client variant in a child process of
 * its own, so memory and CPU figures are that client's alone (`parent.ts` starts it).
 *
 * Run as a script, this file is the child: `child.ts <variant> <mode> <url> <concurrency>
 * [--quick] [--cpu-profile <file>] [--min-runs <n>]` prints its result as one JSON line.
 */
import { writeFileSync } from "node:fs"
import { Session } from "node:inspector/promises"
import { type PerformanceEntry, performance, PerformanceObserver } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { type Client, makeClient, steps, type Variant } from "./clients.js"

export type Mode = "latency" | "scale" | "heap"

/** This file, which the parent runs as the child's script. */
export const childScript = fileURLToPath(import.meta.url)

export interface ChildResult {
  readonly variant: Variant
  readonly mode: Mode
  readonly concurrency: number
  readonly usPerStep?: number
  readonly runsPerSecond?: number
  readonly peakRssMb?: number
  readonly baselineRssMb?: number
  readonly kbPerRun?: number
  readonly liveKbPerRun?: number
  /** Runs measured: `batches` batches of `concurrency` runs, one after the other. */
  readonly runs?: number
  /** Client CPU (user + system, all threads) per run during the measured batches, ms. */
  readonly cpuMsPerRun?: number
  /**
   * Cores the client used during the batches (CPU time / wall time). A client whose event loop
   * is never idle but that gets less than a core is held back by other processes: its runs/s is
   * this share over its CPU per run, so on a shared machine compare CPU per run.
   */
  readonly cores?: number
  /** Time in GC pauses per run during the batches, ms: all, scavenges, mark-compacts; and mark-compacts. */
  readonly gcMsPerRun?: number
  readonly scavengeMsPerRun?: number
  readonly markCompactMsPerRun?: number
  readonly majorGcs?: number
  /** The client's event-loop utilization during the batch (1: never idle, so CPU-bound). */
  readonly elu?: number
}

/** The child prints these lines around its measured batch; the parent samples its own CPU then. */
export const windowStart = "@@window-start"
export const windowEnd = "@@window-end"

export interface ChildOptions {
  readonly quick: boolean
  /** Write a CPU profile of the measured batch (scale mode) to this path. */
  readonly cpuProfile?: string
  /** Scale mode: repeat the batch until this many runs were measured (default one batch). */
  readonly minRuns?: number
}

const gcObserver = () => {
  const totals = { ms: 0, scavengeMs: 0, markCompactMs: 0, majors: 0 }
  // Node's kinds: 1 a scavenge (young generation), 2 a mark-sweep-compact, 4 an incremental
  // marking step, 8 weak callbacks.
  const add = (entries: ReadonlyArray<PerformanceEntry>) => {
    for (const entry of entries) {
      const kind = (entry as { detail?: { kind?: number } }).detail?.kind
      totals.ms += entry.duration
      if (kind === 1) totals.scavengeMs += entry.duration
      if (kind === 2) {
        totals.markCompactMs += entry.duration
        totals.majors++
      }
    }
  }
  const observer = new PerformanceObserver((list) => add(list.getEntries()))
  observer.observe({ entryTypes: ["gc"] })
  return {
    read: () => {
      add(observer.takeRecords())
      observer.disconnect()
      return totals
    }
  }
}

/** V8's profiler stamps samples with the monotonic clock in µs, as `process.hrtime` reads it. */
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n)

const startProfiler = async () => {
  const session = new Session()
  session.connect()
  await session.post("Profiler.enable")
  await session.post("Profiler.setSamplingInterval", { interval: 200 })
  await session.post("Profiler.start")
  /** Writes the profile, with the measured window (the profiler's clock: monotonic µs) that `cpuProfile.ts` keeps to. */
  return async (path: string, window: { readonly start: number; readonly end: number }) => {
    const { profile } = await session.post("Profiler.stop")
    writeFileSync(path, JSON.stringify({ ...profile, window }))
    session.disconnect()
  }
}

const latency = async (client: Client, quick: boolean) => {
  // Steady state: every variant first runs for a few seconds, until the JIT has settled (the
  // first few hundred runs of each are up to twice as slow, ours and the AI SDK's alike).
  const warmUntil = performance.now() + (quick ? 750 : 4_000)
  while (performance.now() < warmUntil) await client.runOnce()
  const iterations = quick ? 30 : 300
  const start = performance.now()
  for (let i = 0; i < iterations; i++) await client.runOnce()
  const elapsed = performance.now() - start
  return { usPerStep: (elapsed * 1000) / (iterations * steps) }
}

const heap = async (client: Client, concurrency: number) => {
  // Live memory: a full collection while every run is in flight (each waits on the server's
  // delayed answer), compared with one before they started.
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  gc?.()
  const before = process.memoryUsage().heapUsed
  const all = Promise.all(Array.from({ length: concurrency }, () => client.runOnce()))
  await new Promise((resolve) => setTimeout(resolve, 700))
  gc?.()
  gc?.()
  const during = process.memoryUsage().heapUsed
  await all
  return { liveKbPerRun: (during - before) / 1024 / concurrency }
}

const scale = async (client: Client, concurrency: number, options: ChildOptions) => {
  // Warm-up in concurrent batches, so the code paths a crowd takes are compiled before the
  // measurement too (and the answers' delay is waited out once per batch, not once per run).
  for (let batch = 0; batch < (options.quick ? 1 : 3); batch++) {
    await Promise.all(Array.from({ length: 100 }, () => client.runOnce()))
  }
  ;(globalThis as { gc?: () => void }).gc?.()
  await new Promise((resolve) => setTimeout(resolve, 50))
  const stopProfiler = options.cpuProfile === undefined ? undefined : await startProfiler()
  const baseline = process.memoryUsage.rss()
  let peak = baseline
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss())
  }, 2)
  const gcs = gcObserver()
  console.log(windowStart)
  const windowStartUs = monotonicUs()
  const cpu = process.cpuUsage()
  const elu = performance.eventLoopUtilization()
  const start = performance.now()
  const batches = Math.max(1, Math.ceil((options.minRuns ?? 0) / concurrency))
  for (let batch = 0; batch < batches; batch++) {
    await Promise.all(Array.from({ length: concurrency }, () => client.runOnce()))
  }
  const elapsed = performance.now() - start
  const runs = batches * concurrency
  const cpuUsed = process.cpuUsage(cpu)
  const eluUsed = performance.eventLoopUtilization(elu)
  const windowEndUs = monotonicUs()
  console.log(windowEnd)
  const gc = gcs.read()
  clearInterval(sampler)
  peak = Math.max(peak, process.memoryUsage.rss())
  if (stopProfiler) await stopProfiler(options.cpuProfile!, { start: windowStartUs, end: windowEndUs })
  const cpuMs = (cpuUsed.user + cpuUsed.system) / 1000
  return {
    runs,
    runsPerSecond: runs / (elapsed / 1000),
    peakRssMb: peak / 2 ** 20,
    baselineRssMb: baseline / 2 ** 20,
    kbPerRun: (peak - baseline) / 1024 / concurrency,
    cpuMsPerRun: cpuMs / runs,
    cores: cpuMs / elapsed,
    gcMsPerRun: gc.ms / runs,
    scavengeMsPerRun: gc.scavengeMs / runs,
    markCompactMsPerRun: gc.markCompactMs / runs,
    majorGcs: gc.majors,
    elu: eluUsed.utilization
  }
}

/** The child's side: sets the variant's client up, checks one run, warms up, measures. */
export const child = async (variant: Variant, mode: Mode, url: string, concurrency: number, options: ChildOptions): Promise<ChildResult> => {
  const client = await makeClient(variant, url)
  // Warm-up, its first run checked (the scaling measurement warms up in batches of its own).
  // Against the slow server of the heap measurement, one batch at once rather than in turn.
  if (mode === "heap") await Promise.all([client.check(), ...Array.from({ length: 19 }, () => client.runOnce())])
  else {
    await client.check()
    if (mode === "latency") for (let i = 1; i < 30; i++) await client.runOnce()
  }
  const base = { variant, mode, concurrency }
  switch (mode) {
    case "latency":
      return { ...base, concurrency: 1, ...(await latency(client, options.quick)) }
    case "heap":
      return { ...base, ...(await heap(client, concurrency)) }
    case "scale":
      return { ...base, ...(await scale(client, concurrency, options)) }
  }
}

if (process.argv[1] === childScript) {
  const [variant, mode, url, concurrency] = process.argv.slice(2)
  const option = (name: string) => {
    const at = process.argv.indexOf(name)
    return at >= 0 ? process.argv[at + 1] : undefined
  }
  const cpuProfile = option("--cpu-profile")
  const minRuns = option("--min-runs")
  child(variant as Variant, mode as Mode, url!, Number(concurrency), {
    quick: process.argv.includes("--quick"),
    ...(cpuProfile ? { cpuProfile } : {}),
    ...(minRuns ? { minRuns: Number(minRuns) } : {})
  }).then(
    (result) => {
      console.log(JSON.stringify(result))
      process.exit(0)
    },
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
}
