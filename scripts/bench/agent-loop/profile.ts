/**
 * `agent-loop.ts --profile`: where a run's time goes as concurrency grows. Each variant runs the
 * scaling measurement (a batch of N concurrent runs against the server that delays each answer)
 * in its own child process with the V8 CPU profiler on for the batch; the profile's self time is
 * divided by N, so the figures are per run and compare across concurrencies. Beside it: the
 * client's CPU, GC pauses and event-loop utilization, and the server process's CPU, to tell a
 * saturated client from a saturated server.
 */
import { mkdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { type CpuProfile, format, type Summary, summarize } from "../cpuProfile.js"
import { type Measured, runChild } from "./parent.js"
import { labels, type Variant } from "./clients.js"

export interface ProfileOptions {
  readonly url: string
  readonly variants: ReadonlyArray<Variant>
  readonly concurrencies: ReadonlyArray<number>
  readonly top?: number
}

const directory = fileURLToPath(new URL("../../../tmp/bench-profiles/", import.meta.url))

const figures = (m: Measured) =>
  `${m.runs} runs, ${m.runsPerSecond!.toFixed(0)} runs/s; client CPU ${m.cpuMsPerRun!.toFixed(2)} ms/run ` +
  `(${m.cores!.toFixed(2)} cores, ELU ${m.elu!.toFixed(2)}); GC pauses ${m.gcMsPerRun!.toFixed(2)} ms/run ` +
  `(scavenges ${m.scavengeMsPerRun!.toFixed(2)}, mark-compacts ${m.markCompactMsPerRun!.toFixed(2)}, ${m.majorGcs} of them); ` +
  `server CPU ${(m.serverCpuMsPerRun ?? NaN).toFixed(2)} ms/run (ELU ${(m.serverElu ?? NaN).toFixed(2)}); ` +
  `${(m.requestsPerRun ?? NaN).toFixed(2)} requests/run over ${m.connections} connections; peak RSS ${m.peakRssMb!.toFixed(0)} MB`

/** Functions whose self time per run grew most from the first profile to the second. */
const growth = (low: Summary, lowRuns: number, high: Summary, highRuns: number, top: number) => {
  const perRun = (summary: Summary, runs: number) => {
    const map = new Map<string, number>()
    for (const f of summary.functions) map.set(`${f.name}  ${f.where}`, (map.get(`${f.name}  ${f.where}`) ?? 0) + f.ms / runs)
    return map
  }
  const a = perRun(low, lowRuns)
  const b = perRun(high, highRuns)
  const keys = new Set([...a.keys(), ...b.keys()])
  return [...keys]
    .map((key) => ({ key, low: a.get(key) ?? 0, high: b.get(key) ?? 0 }))
    .sort((x, y) => y.high - y.low - (x.high - x.low))
    .slice(0, top)
}

export const profile = async (options: ProfileOptions) => {
  mkdirSync(directory, { recursive: true })
  const top = options.top ?? 30
  const summaries = new Map<string, { summary: Summary; runs: number }>()
  for (const concurrency of options.concurrencies) {
    // The variants take turns at each concurrency.
    for (const variant of options.variants) {
      const file = join(directory, `${variant}-${concurrency}.cpuprofile`)
      // As many runs at every concurrency (batches one after the other), so the per-run figures
      // have as many samples and as warm a JIT behind them.
      const measured = await runChild([variant, "scale", options.url, String(concurrency)], {
        quick: false,
        cpuProfile: file,
        minRuns: Math.max(...options.concurrencies)
      })
      const summary = summarize(JSON.parse(readFileSync(file, "utf8")) as CpuProfile)
      const runs = measured.runs ?? concurrency
      summaries.set(`${variant}@${concurrency}`, { summary, runs })
      console.log(`\n== ${labels[variant]}, ${concurrency} concurrent runs: ${figures(measured)}`)
      console.log(`profile: ${file}`)
      console.log(format(summary, { top, per: runs }).join("\n"))
    }
  }
  const lowest = Math.min(...options.concurrencies)
  const highest = Math.max(...options.concurrencies)
  if (lowest === highest) return
  for (const variant of options.variants) {
    const low = summaries.get(`${variant}@${lowest}`)!
    const high = summaries.get(`${variant}@${highest}`)!
    console.log(`\n== ${labels[variant]}: self time per run that grew from ${lowest} to ${highest} concurrent runs (ms/run)`)
    console.log(`${"at " + lowest}`.padStart(9) + `${"at " + highest}`.padStart(10) + "    growth")
    for (const { key, low: a, high: b } of growth(low.summary, low.runs, high.summary, high.runs, top)) {
      console.log(`${a.toFixed(3).padStart(9)} ${b.toFixed(3).padStart(9)} ${(b - a).toFixed(3).padStart(9)}  ${key}`)
    }
  }
}
