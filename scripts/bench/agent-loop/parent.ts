/**
 * The agent-loop benchmark's parent side: the model's answers for the local OpenAI-compatible
 * server (`test/peers/OpenAiServer.ts`) that lives in the parent process, what it served, and
 * the spawn of a child measurement with what the server process did during its measured batch.
 */
import { spawn } from "node:child_process"
import { performance } from "node:perf_hooks"
import * as OpenAiServer from "../../../test/peers/OpenAiServer.js"
import { type ChildResult, childScript, windowEnd, windowStart } from "./child.js"
import { toolSteps } from "./clients.js"

/**
 * What the server answered since the last reset (the parent resets it when a child's measured
 * batch starts): requests, so retries show as more than `steps` per run, and the client ports
 * they came from, the connections the client's pool opened.
 */
export const served = { requests: 0, ports: new Set<number>() }

/**
 * The model's side: four `add` calls, one per step, then a text answer, each after `delay` ms
 * (with `firstStepOnly`, only a run's first answer waits).
 */
export const answer = (
  request: OpenAiServer.RecordedRequest,
  delay: number,
  options: { readonly firstStepOnly?: boolean } = {}
): OpenAiServer.Step => {
  served.requests++
  served.ports.add(request.remotePort)
  const messages: ReadonlyArray<{ role: string }> = request.body?.messages ?? []
  const done = messages.filter((message) => message.role === "tool").length
  const delayMs = options.firstStepOnly && done > 0 ? 0 : delay
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

/** What the parent adds: the server's side of the child's measured batch. */
export interface Measured extends ChildResult {
  readonly serverCpuMsPerRun?: number
  readonly serverElu?: number
  /** Requests the server answered per run (`steps` unless the client retried). */
  readonly requestsPerRun?: number
  /** Connections (client ports) the requests came over. */
  readonly connections?: number
}

/**
 * Runs `child.ts` with `args` in a fresh Node process and returns its result, with what this
 * (the server's) process did during the child's measured batch.
 */
export const runChild = (
  args: ReadonlyArray<string>,
  options: { readonly quick: boolean; readonly cpuProfile?: string; readonly minRuns?: number }
): Promise<Measured> =>
  new Promise((resolve, reject) => {
    const extra = [
      ...(options.quick ? ["--quick"] : []),
      ...(options.cpuProfile ? ["--cpu-profile", options.cpuProfile] : []),
      ...(options.minRuns ? ["--min-runs", String(options.minRuns)] : [])
    ]
    const proc = spawn(process.execPath, ["--expose-gc", "--import", "tsx", childScript, ...args, ...extra], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    let pending = ""
    let cpu: NodeJS.CpuUsage | undefined
    let elu: ReturnType<typeof performance.eventLoopUtilization> | undefined
    let server: { cpuMs: number; elu: number; requests: number; connections: number } | undefined
    proc.stdout.on("data", (chunk: Buffer) => {
      out += chunk
      pending += chunk
      const lines = pending.split("\n")
      pending = lines.pop()!
      for (const line of lines) {
        if (line === windowStart) {
          cpu = process.cpuUsage()
          elu = performance.eventLoopUtilization()
          served.requests = 0
          served.ports.clear()
        } else if (line === windowEnd && cpu && elu) {
          const used = process.cpuUsage(cpu)
          server = {
            cpuMs: (used.user + used.system) / 1000,
            elu: performance.eventLoopUtilization(elu).utilization,
            requests: served.requests,
            connections: served.ports.size
          }
        }
      }
    })
    proc.on("exit", (code) => {
      const line = out.trim().split("\n").at(-1) ?? ""
      if (code !== 0) return reject(new Error(`child ${args.join(" ")} exited with ${code}: ${out}`))
      const result = JSON.parse(line) as ChildResult
      resolve(
        server
          ? {
            ...result,
            serverCpuMsPerRun: server.cpuMs / (result.runs ?? result.concurrency),
            serverElu: server.elu,
            requestsPerRun: server.requests / (result.runs ?? result.concurrency),
            connections: server.connections
          }
          : result
      )
    })
  })
