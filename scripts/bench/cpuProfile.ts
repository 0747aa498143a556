/**
 * Reads a V8 CPU profile (`.cpuprofile`, as written by `node --cpu-prof` or the inspector's
 * `Profiler.stop`) and says where the time went: self time per function (mapped through source
 * maps to the TypeScript it was built from, so a kernel function is named by its `src/` file and
 * line), per package or source file, and the profiler's own buckets — `(garbage collector)`,
 * `(idle)`, `(program)`.
 *
 * Used by `agent-loop.ts --profile`; also runnable on its own:
 *   npx tsx scripts/bench/cpuProfile.ts <file.cpuprofile> [--top 30] [--per <runs>]
 * `--per` divides every figure by a number of runs, so two profiles of different lengths compare.
 */
import { existsSync, readFileSync } from "node:fs"
import { SourceMap } from "node:module"
import { dirname, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
  readonly columnNumber: number
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
}

export interface CpuProfile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly startTime: number
  readonly endTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
  /** When present (added by the agent-loop bench), only samples in this span count: monotonic µs, as `startTime`. */
  readonly window?: { readonly start: number; readonly end: number }
}

export interface Summary {
  /** Sampled time in ms (the profile's span). */
  readonly totalMs: number
  /** Self time per function, ms, largest first. */
  readonly functions: ReadonlyArray<{ readonly name: string; readonly where: string; readonly ms: number }>
  /** Self time per package (`node_modules/<name>`), `src/<file>` of this repository, or V8 bucket, ms. */
  readonly groups: ReadonlyArray<{ readonly group: string; readonly ms: number }>
}

const root = fileURLToPath(new URL("../../", import.meta.url))
const sourceMaps = new Map<string, SourceMap | undefined>()

const sourceMapOf = (file: string): SourceMap | undefined => {
  if (!sourceMaps.has(file)) {
    let map: SourceMap | undefined
    try {
      if (existsSync(`${file}.map`)) map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, "utf8")))
    } catch {
      map = undefined
    }
    sourceMaps.set(file, map)
  }
  return sourceMaps.get(file)
}

/** `path:line` of a frame, through the file's source map when it has one (1-based lines). */
const locate = (frame: CallFrame): { readonly file: string; readonly where: string } => {
  if (!frame.url) return { file: "", where: "" }
  const file = frame.url.startsWith("file://") ? fileURLToPath(frame.url) : frame.url
  const map = frame.url.startsWith("file://") ? sourceMapOf(file) : undefined
  const entry = map?.findEntry(frame.lineNumber, frame.columnNumber) as
    | { originalSource?: string; originalLine?: number }
    | undefined
  if (entry?.originalSource !== undefined && entry.originalLine !== undefined) {
    const source = entry.originalSource.startsWith("file://")
      ? fileURLToPath(entry.originalSource)
      : resolve(dirname(file), entry.originalSource)
    const shown = relative(root, source)
    return { file: shown, where: `${shown}:${entry.originalLine + 1}` }
  }
  const shown = file.startsWith("/") ? relative(root, file) : file
  return { file: shown, where: `${shown}:${frame.lineNumber + 1}` }
}

const groupOf = (file: string, name: string): string => {
  if (file === "") return name.startsWith("(") ? name : "(native)"
  const nodeModules = file.lastIndexOf("node_modules/")
  if (nodeModules >= 0) {
    const rest = file.slice(nodeModules + "node_modules/".length).split("/")
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!
  }
  if (file.startsWith("node:")) return "node:*"
  return file
}

export const summarize = (profile: CpuProfile): Summary => {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const selfUs = new Map<number, number>()
  // A sample's delta is the time since the previous sample; it is charged to the sample's node.
  let at = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0
    at += delta
    if (profile.window && (at < profile.window.start || at > profile.window.end)) continue
    const id = profile.samples[i]!
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta)
  }
  const functions = new Map<string, { name: string; where: string; ms: number }>()
  const groups = new Map<string, number>()
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame
    const { file, where } = locate(frame)
    const name = frame.functionName || "(anonymous)"
    const key = `${name} ${where}`
    const entry = functions.get(key) ?? { name, where, ms: 0 }
    entry.ms += us / 1000
    functions.set(key, entry)
    const group = groupOf(file, name)
    groups.set(group, (groups.get(group) ?? 0) + us / 1000)
  }
  return {
    totalMs: ((profile.window?.end ?? profile.endTime) - (profile.window?.start ?? profile.startTime)) / 1000,
    functions: [...functions.values()].sort((a, b) => b.ms - a.ms),
    groups: [...groups].map(([group, ms]) => ({ group, ms })).sort((a, b) => b.ms - a.ms)
  }
}

const fmt = (ms: number, per: number) => (ms / per).toFixed(3).padStart(9)

/** Lines of a summary for a terminal: per-run figures when `per` is the number of runs. */
export const format = (summary: Summary, options: { readonly top?: number; readonly per?: number } = {}): Array<string> => {
  const top = options.top ?? 30
  const per = options.per ?? 1
  const unit = per === 1 ? "ms" : "ms/run"
  const lines = [`sampled ${summary.totalMs.toFixed(0)} ms; figures in ${unit}`, `-- self time by group (top 15)`]
  for (const { group, ms } of summary.groups.slice(0, 15)) lines.push(`${fmt(ms, per)}  ${group}`)
  lines.push(`-- self time by function (top ${top})`)
  for (const { name, where, ms } of summary.functions.slice(0, top)) lines.push(`${fmt(ms, per)}  ${name}  ${where}`)
  return lines
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [file] = process.argv.slice(2).filter((arg) => !arg.startsWith("--") && !/^\d+$/.test(arg))
  const option = (name: string) => {
    const at = process.argv.indexOf(name)
    return at >= 0 ? Number(process.argv[at + 1]) : undefined
  }
  if (!file) {
    console.error("usage: npx tsx scripts/bench/cpuProfile.ts <file.cpuprofile> [--top 30] [--per <runs>]")
    process.exit(2)
  }
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile
  console.log(format(summarize(profile), { top: option("--top") ?? 30, per: option("--per") ?? 1 }).join("\n"))
}
