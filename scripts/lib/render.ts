/**
 * Renders `AgentEvent`s for a terminal: the route of each model call, the model's reasoning
 * (dimmed) and the answer as they stream, tool calls with a spinner or progress bar, and token
 * usage. On a TTY the spinner and progress
 * bar redraw in place; elsewhere (a pipe, a CI log) each progress report is a line of its own.
 */
import type { AgentEvent } from "../../src/domain/Events.js"
import type { Usage } from "../../src/domain/Message.js"

export interface RendererOptions {
  /** Where text goes (default: stdout). */
  readonly write?: (text: string) => void
  /** Redraw spinners and progress bars in place (default: stdout is a TTY). */
  readonly live?: boolean
  /** ANSI colours (default: stdout is a TTY and NO_COLOR is unset). */
  readonly color?: boolean
  /** Printed before the streamed answer of each model step. */
  readonly answerLabel?: string
  /** Printed (dimmed) before the streamed reasoning of each model step. */
  readonly reasoningLabel?: string
  /** Print each model step's usage, not only the run's total (default true). */
  readonly showStepUsage?: boolean
  /** Print a failed run's reason (default true; off for callers that explain failures themselves). */
  readonly showFailure?: boolean
}

export interface Renderer {
  readonly render: (event: AgentEvent) => void
  /** Prints a line of the script's own, keeping the live line and the answer text intact. */
  readonly line: (text: string) => void
  /** Ends any open line and stops the spinner. */
  readonly close: () => void
  readonly style: Style
}

export interface Style {
  readonly dim: (text: string) => string
  readonly bold: (text: string) => string
  readonly red: (text: string) => string
  readonly green: (text: string) => string
  readonly yellow: (text: string) => string
  readonly cyan: (text: string) => string
  readonly magenta: (text: string) => string
}

export const makeStyle = (color: boolean): Style => {
  const paint = (open: number, close: number) => (text: string) => color ? `\x1b[${open}m${text}\x1b[${close}m` : text
  return {
    dim: paint(2, 22),
    bold: paint(1, 22),
    red: paint(31, 39),
    green: paint(32, 39),
    yellow: paint(33, 39),
    cyan: paint(36, 39),
    magenta: paint(35, 39)
  }
}

/** `text` cut to `max` characters, on one line. */
export const clip = (text: string, max = 110): string => {
  const flat = text.replace(/\s+/g, " ").trim()
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`
}

const show = (value: unknown): string => typeof value === "string" ? value : JSON.stringify(value) ?? "null"

/** `12 in / 34 out`; a field the provider did not report shows as `?`. */
export const formatUsage = (usage: Usage): string => {
  const n = (value: number | undefined) => value === undefined ? "?" : value.toLocaleString("en-US")
  const total = usage.totalTokens ??
    (usage.inputTokens !== undefined && usage.outputTokens !== undefined ? usage.inputTokens + usage.outputTokens : undefined)
  return `${n(usage.inputTokens)} in / ${n(usage.outputTokens)} out = ${n(total)} tokens`
}

/** `▕██████░░░░░░▏  50% (1/2)` */
export const progressBar = (progress: number, total: number | undefined, width = 24): string => {
  if (total === undefined || total <= 0) return `${progress}`
  const ratio = Math.min(1, Math.max(0, progress / total))
  const filled = Math.round(ratio * width)
  const percent = `${Math.round(ratio * 100)}%`.padStart(4)
  return `▕${"█".repeat(filled)}${"░".repeat(width - filled)}▏ ${percent} (${progress}/${total})`
}

const spinnerFrames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]

interface Running {
  readonly name: string
  progress?: number
  total?: number
}

export const makeRenderer = (options: RendererOptions = {}): Renderer => {
  const isTty = process.stdout.isTTY === true
  const write = options.write ?? ((text: string) => void process.stdout.write(text))
  const live = options.live ?? isTty
  const style = makeStyle(options.color ?? (isTty && process.env.NO_COLOR === undefined))
  const answerLabel = options.answerLabel ?? "assistant ›"
  const reasoningLabel = options.reasoningLabel ?? "thinking ›"
  const running = new Map<string, Running>()
  // What is being streamed on the current line, written without its newline yet.
  let midLine: "answer" | "reasoning" | undefined
  let liveShown = false
  let frame = 0
  let timer: ReturnType<typeof setInterval> | undefined

  const liveText = () => {
    const parts = [...running.values()].map((tool) =>
      tool.progress !== undefined ? `${tool.name} ${progressBar(tool.progress, tool.total)}` : `${tool.name} running…`
    )
    return `  ${style.cyan(spinnerFrames[frame % spinnerFrames.length]!)} ${parts.join("  ·  ")}`
  }
  const clearLive = () => {
    if (liveShown) write("\r\x1b[2K")
    liveShown = false
  }
  const drawLive = () => {
    if (!live || running.size === 0 || midLine !== undefined) return
    write(`\r\x1b[2K${liveText()}`)
    liveShown = true
  }
  const syncSpinner = () => {
    if (live && running.size > 0 && timer === undefined) {
      timer = setInterval(() => {
        frame++
        drawLive()
      }, 80)
      timer.unref()
    } else if (running.size === 0 && timer !== undefined) {
      clearInterval(timer)
      timer = undefined
    }
  }
  const endAnswer = () => {
    if (midLine !== undefined) write("\n")
    midLine = undefined
  }
  const line = (text: string) => {
    clearLive()
    endAnswer()
    write(`${text}\n`)
    drawLive()
  }

  const render = (event: AgentEvent): void => {
    switch (event.type) {
      case "task-created":
        return
      case "task-status":
        if (event.status === "failed") {
          if (options.showFailure !== false) line(style.red(`  ✗ run failed: ${event.message ?? "no reason given"}`))
        } else if (event.status === "waiting-input") line(style.dim(`  … ${event.message ?? "waiting for input"}`))
        else if (event.status === "canceled") line(style.yellow("  run canceled"))
        return
      case "route-selected": {
        const signals = event.signals.length > 0 ? event.signals.join(", ") : "none"
        const forced = event.forced === true ? style.yellow(" (tier forced)") : ""
        line(
          `  ${style.magenta("route")}  ${style.bold(`${event.tier} → ${event.provider}`)}${forced}  ` +
            style.dim(`score ${event.score} · signals: ${signals}`)
        )
        for (const attempt of event.fallbacksTried ?? []) {
          line(style.yellow(`         ↷ skipped ${attempt.provider}: ${clip(attempt.reason, 150)}`))
        }
        return
      }
      case "content-delta":
        if (midLine !== "answer") {
          clearLive()
          endAnswer()
          write(`${style.green(answerLabel)} `)
          midLine = "answer"
        }
        write(event.delta)
        return
      case "reasoning-delta":
        if (midLine !== "reasoning") {
          clearLive()
          endAnswer()
          write(`${style.dim(reasoningLabel)} `)
          midLine = "reasoning"
        }
        write(style.dim(event.delta))
        return
      case "content-complete":
        endAnswer()
        return
      case "llm-usage": {
        if (options.showStepUsage === false) return
        const who = [event.provider, event.model].filter((part) => part !== undefined).join("/")
        line(style.dim(`  usage  step ${event.step}${who !== "" ? ` · ${who}` : ""} · ${formatUsage(event.usage)}`))
        return
      }
      case "task-complete":
        line(style.dim(`  total  ${formatUsage(event.usage)} over ${event.steps} step${event.steps === 1 ? "" : "s"}`))
        return
      case "tool-start":
        running.set(event.toolCallId, { name: event.toolName })
        line(`  ${style.cyan("tool")}   ${event.toolName} ${style.dim(clip(show(event.arguments), 90))}`)
        syncSpinner()
        return
      case "tool-progress": {
        const tool = running.get(event.toolCallId)
        if (tool !== undefined && event.progress !== undefined) {
          tool.progress = event.progress
          if (event.total !== undefined) tool.total = event.total
        }
        if (live) {
          drawLive()
        } else {
          const bar = event.progress !== undefined ? progressBar(event.progress, event.total) : ""
          line(`         ${event.toolName} ${bar}${event.message !== undefined ? ` ${event.message}` : ""}`)
        }
        return
      }
      case "tool-complete":
        running.delete(event.toolCallId)
        syncSpinner()
        line(`  ${style.green("✓")}      ${event.toolName} → ${clip(show(event.result), 100)}`)
        return
      case "tool-error":
        running.delete(event.toolCallId)
        syncSpinner()
        line(style.red(`  ✗      ${event.toolName} failed (${event.reason}): ${clip(event.error, 100)}`))
        return
      case "tool-input-required":
        line(`  ${style.yellow("?")}      ${event.toolName} waits for the client ${style.dim(clip(show(event.arguments), 80))}`)
        return
    }
  }

  const close = () => {
    running.clear()
    syncSpinner()
    clearLive()
    endAnswer()
  }

  return { render, line, close, style }
}
