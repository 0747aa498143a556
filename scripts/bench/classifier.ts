/**
 * Benchmark: `classifyQuery` (the pure core of the QueryClassifier) over the labelled evaluation
 * set of `test/router/classifier-eval.ts`, with default settings.
 *
 * - warm-up: a few thousand passes over the set, so the JIT has settled;
 * - mean: several rounds of many passes; the median round's wall time and the process CPU time
 *   per call are both compared with the target (at most 3 µs per call) — on an idle machine they
 *   agree, on a loaded one wall time also counts the time the process waited for a CPU;
 * - p50/p99: per-call samples, each the mean of a small batch of calls of one prompt (a single
 *   call is too short for the timer), with the timer's own cost subtracted;
 * - scaling: the same for one long input (about 4,000 characters of prose and code).
 *
 * Usage: npm run bench:classifier [-- --quick]   (builds dist/ first: the benchmark loads the
 * package as a user gets it)
 */
import * as os from "node:os"
import { classifyQuery } from "effect-agent-kernel/QueryClassifier"
import { classifierEvalSet } from "../../test/router/classifier-eval.js"

const quick = process.argv.includes("--quick")
const targetMicros = 3
const texts = classifierEvalSet.map((item) => item.text)
const rounds = quick ? 5 : 15
const passesPerRound = quick ? 60 : 300
const batch = 16
const samples = quick ? 10_000 : 60_000

// Accumulated and printed so no call can be optimised away.
let sink = 0
const run = (text: string) => {
  sink += classifyQuery(text).score
}

const median = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
const fmt = (micros: number) => micros.toFixed(2)

const measureMean = (inputs: ReadonlyArray<string>, passes: number) => {
  const wall: Array<number> = []
  const cpu: Array<number> = []
  for (let round = 0; round < rounds; round++) {
    const cpuStart = process.cpuUsage()
    const start = process.hrtime.bigint()
    for (let pass = 0; pass < passes; pass++) for (const text of inputs) run(text)
    const calls = passes * inputs.length
    wall.push(Number(process.hrtime.bigint() - start) / 1000 / calls)
    const used = process.cpuUsage(cpuStart)
    cpu.push((used.user + used.system) / calls)
  }
  return { median: median(wall), best: Math.min(...wall), cpu: median(cpu) }
}

const timerCost = () => {
  const costs: Array<number> = []
  for (let i = 0; i < 10_000; i++) {
    const start = process.hrtime.bigint()
    costs.push(Number(process.hrtime.bigint() - start) / 1000)
  }
  return median(costs)
}

const measurePercentiles = (inputs: ReadonlyArray<string>, count: number) => {
  const overhead = timerCost()
  const perCall: Array<number> = []
  for (let i = 0; i < count; i++) {
    const text = inputs[i % inputs.length]!
    const start = process.hrtime.bigint()
    for (let k = 0; k < batch; k++) run(text)
    perCall.push(Math.max(0, Number(process.hrtime.bigint() - start) / 1000 - overhead) / batch)
  }
  perCall.sort((a, b) => a - b)
  return { p50: percentile(perCall, 50), p99: percentile(perCall, 99), max: perCall[perCall.length - 1]! }
}

const longInput = (() => {
  const paragraph =
    "We are migrating the billing service to a new database and need a plan. First list the risks, then " +
    "propose the order of steps, and finally estimate the downtime for each step.\n"
  const code = "```ts\nexport const total = (items: ReadonlyArray<Item>) =>\n" +
    "  items.reduce((sum, item) => sum + item.price, 0)\n```\n"
  let text = ""
  while (text.length < 4_000) text += paragraph + code
  return text
})()

const main = () => {
  const averageChars = texts.reduce((sum, text) => sum + text.length, 0) / texts.length
  for (let pass = 0; pass < (quick ? 500 : 3_000); pass++) for (const text of texts) run(text)

  const mean = measureMean(texts, passesPerRound)
  const spread = measurePercentiles(texts, samples)
  const long = measureMean([longInput], passesPerRound * 4)

  const [load] = os.loadavg()
  const cores = os.availableParallelism()
  console.log(
    `classifyQuery over the evaluation set: ${texts.length} prompts, ${averageChars.toFixed(0)} chars on average`
  )
  console.log(`  rounds: ${rounds} × ${passesPerRound} passes (${rounds * passesPerRound * texts.length} calls)`)
  console.log(
    `  mean  ${fmt(mean.median)} µs/call (median round)   best round ${fmt(mean.best)}   CPU time ${fmt(mean.cpu)}`
  )
  console.log(
    `  p50   ${fmt(spread.p50)} µs   p99 ${fmt(spread.p99)} µs   max ${fmt(spread.max)} µs (batches of ${batch})`
  )
  console.log(`  long input (${longInput.length} chars): ${fmt(long.median)} µs/call, CPU ${fmt(long.cpu)}`)
  const verdict = (micros: number) =>
    `${fmt(micros)} µs, ratio ${(micros / targetMicros).toFixed(2)} ${micros <= targetMicros ? "(met)" : "(NOT met)"}`
  console.log(`  target ≤ ${targetMicros} µs mean: wall ${verdict(mean.median)}; CPU time ${verdict(mean.cpu)}`)
  if (load !== undefined && load > cores) {
    console.log(
      `  note: load average ${load.toFixed(1)} on ${cores} cores; wall times include time spent waiting for a CPU, ` +
        `the CPU-time figure does not`
    )
  }
  if (Number.isNaN(sink)) console.log("unreachable")
}

main()
