/**
 * A simulated model behind an OpenAI-compatible endpoint, for the demo. It is a handful of rules
 * over the request body, not a language model, and every answer says so:
 * - when the conversation ends with tool results, it answers with text quoting them;
 * - else, when the latest user prompt mentions a tool the request offers, it calls that tool;
 * - else it gives a canned answer.
 * Answers stream word by word with a short delay, and report token usage (estimated from the
 * text, four characters a token).
 */
import * as OpenAiServer from "../../test/peers/OpenAiServer.js"

interface WireMessage {
  readonly role: string
  readonly content?: string | null
  readonly name?: string
  readonly tool_call_id?: string
  readonly tool_calls?: ReadonlyArray<{ readonly id: string; readonly function: { readonly name: string } }>
}

/** When the latest prompt matches `when` and the request offers `tool`, the model calls it. */
interface ToolRule {
  readonly tool: string
  readonly when: RegExp
  readonly arguments: (prompt: string) => Record<string, unknown>
}

const numbersIn = (text: string): Array<number> => (text.match(/-?\d+(?:\.\d+)?/g) ?? []).map(Number)

const toolRules: ReadonlyArray<ToolRule> = [
  { tool: "current_time", when: /\btime\b/i, arguments: () => ({}) },
  {
    tool: "calculator",
    when: /\bcalculator\b/i,
    arguments: (prompt) => ({ expression: prompt.match(/[\d(][\d\s+\-*/%^().]*[\d)]/)?.[0]?.trim() ?? "0" })
  },
  {
    tool: "get-sum",
    when: /\bget-sum\b/,
    arguments: (prompt) => {
      const [a = 0, b = 0] = numbersIn(prompt)
      return { a, b }
    }
  },
  { tool: "trigger-long-running-operation", when: /long-running/i, arguments: () => ({ duration: 2, steps: 5 }) },
  {
    tool: "openai_pair",
    when: /\bpair openai\b/i,
    arguments: (prompt) => ({ apiKey: prompt.match(/\bkey\s+(\S+)/i)?.[1] ?? "" })
  },
  {
    tool: "request_approval",
    when: /\bapproval\b/i,
    arguments: (prompt) => ({ action: prompt.match(/approval to ([^.?!]+)/i)?.[1] ?? "continue" })
  }
]

/** Canned text for prompts the rules know, appended after any quoted tool results. */
const cannedAnswers: ReadonlyArray<{ readonly when: RegExp; readonly text: string }> = [
  {
    when: /odd numbers/i,
    text: "Proof by induction: 1 = 1², and if 1 + 3 + … + (2n − 1) = n², adding 2n + 1 gives n² + 2n + 1 = (n + 1)². ∎"
  },
  {
    when: /square root of 2/i,
    text: "Suppose √2 = p/q in lowest terms. Then p² = 2q², so p is even, p = 2k, so q² = 2k² and q is even too — " +
      "contradicting lowest terms. So √2 is irrational. ∎"
  },
  {
    when: /trade-offs?/i,
    text: "A background job with progress reports keeps the caller informed but ties up a connection; a queue " +
      "decouples them at the cost of polling or callbacks."
  }
]

const estimateTokens = (text: string): number => Math.max(1, Math.ceil(text.length / 4))

/** The text of a streamed answer, in word-sized pieces. */
const pieces = (text: string): Array<string> => text.match(/\S+\s*/g) ?? [text]

/**
 * The endpoint's script: for each chat-completions request, the step answering it. `label`
 * names the simulated provider in its answers.
 */
export const simulatedModel = (label: string) => {
  let calls = 0
  return (request: OpenAiServer.RecordedRequest): OpenAiServer.Step => {
    const body = request.body ?? {}
    const messages: ReadonlyArray<WireMessage> = Array.isArray(body.messages) ? body.messages : []
    const offered = new Set<string>(
      (Array.isArray(body.tools) ? body.tools : []).map((tool: { function?: { name?: string } }) => tool.function?.name)
    )
    const streamed = body.stream === true
    const model = typeof body.model === "string" ? body.model : "simulated"
    const lastUser = messages.findLastIndex((message) => message.role === "user")
    const prompt = messages[lastUser]?.content ?? ""
    const toolResults = messages.slice(lastUser + 1).filter((message) => message.role === "tool")
    const promptTokens = estimateTokens(JSON.stringify(messages))

    const reply = (text: string): OpenAiServer.Step => {
      const usage = OpenAiServer.usage(promptTokens, estimateTokens(text))
      return streamed
        ? OpenAiServer.sse(OpenAiServer.textChunks(pieces(text), { model, usage }), { eventDelayMs: 15 })
        : OpenAiServer.json(OpenAiServer.textCompletion(text, { model, usage }))
    }

    const canned = cannedAnswers.find((answer) => answer.when.test(prompt))?.text
    const prefix = `[simulated model · ${label}]`

    if (toolResults.length > 0) {
      const quoted = toolResults.map((result) => {
        const name = messages.flatMap((message) => message.tool_calls ?? [])
          .find((call) => call.id === result.tool_call_id)?.function.name ?? result.name ?? "the tool"
        return `${name} said “${(result.content ?? "").slice(0, 160)}”`
      })
      return reply(`${prefix} ${quoted.join("; ")}.${canned !== undefined ? ` ${canned}` : ""}`)
    }

    const wanted = toolRules.filter((rule) => offered.has(rule.tool) && rule.when.test(prompt))
    if (wanted.length > 0) {
      const toolCalls = wanted.map((rule) => ({
        id: `call_${label}_${++calls}`,
        name: rule.tool,
        arguments: rule.arguments(prompt)
      }))
      const usage = OpenAiServer.usage(promptTokens, 12 * toolCalls.length)
      return streamed
        ? OpenAiServer.sse(OpenAiServer.toolCallChunks(toolCalls, { model, usage }), { eventDelayMs: 10 })
        : OpenAiServer.json(OpenAiServer.toolCallCompletion(toolCalls, { model, usage }))
    }

    return reply(
      `${prefix} ${
        canned ?? `I am a scripted stand-in, so I cannot really answer “${prompt.slice(0, 80)}” — ` +
            "but the routing, streaming and tools around me are real."
      }`
    )
  }
}
