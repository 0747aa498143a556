/**
 * The classifier's engine: a weighted sum of signals read in one pass over the characters, then
 * thresholds. The lexicon is compiled at module load into a character trie (see
 * `classifierTrie.ts`), walked from each word start during that same pass — no lowercased copy
 * of the text, no regex over hundreds of alternatives, no allocation per word. Settings compile
 * to a weight vector once per settings object.
 *
 * Two scores are kept. The total decides between `simple`, `moderate` and `complex`; the part of
 * it that comes from reasoning signals (proofs, math, puzzles, explicit "step by step") alone
 * decides `reasoning`, because a hard proof is a different kind of request from a large program,
 * not more of the same: summing them put every long coding task above every short proof.
 */
import type { QueryTier } from "../../domain/Message.js"
import {
  contextSignals,
  defaultThresholds,
  defaultWeights,
  lexicalSignals,
  structuralSignals
} from "./classifierLexicon.js"
import { buildTrie, isWordCode, lastMatch, longestEntry } from "./classifierTrie.js"

/**
 * What the classifier reads of a message: its text, and of a message with parts only the text
 * parts (an image says nothing the lexicon could weigh).
 */
export { textOf } from "../../domain/Message.js"

/** Every weight key, lexical first, then structural, then context. */
export const signalNames: ReadonlyArray<string> = [
  ...lexicalSignals.map((signal) => signal.name),
  ...structuralSignals,
  ...contextSignals
]

const LEXICAL = lexicalSignals.length
const indexOf = (name: string): number => {
  const index = signalNames.indexOf(name)
  if (index < 0) throw new Error(`classifier lexicon: unknown signal ${name}`)
  return index
}
const CODE_BLOCK = indexOf("code-block")
const CODE_LIKE = indexOf("code-like")
const INLINE_CODE = indexOf("inline-code")
const STACK_TRACE = indexOf("stack-trace")
const LOG_LINES = indexOf("log-lines")
const MATH_NOTATION = indexOf("math-notation")
const WORD_PROBLEM = indexOf("word-problem")
const NUMBERS = indexOf("numbers")
const MULTI_QUESTION = indexOf("multi-question")
const ENUMERATION = indexOf("enumeration")
const SHORT_INPUT = indexOf("short-input")
const LONG_INPUT = indexOf("long-input")
const VERY_LONG_INPUT = indexOf("very-long-input")
const TOOL_RESULTS = indexOf("tool-results")
const LONG_CONVERSATION = indexOf("long-conversation")
const RECENT_CODE = indexOf("recent-code")
const MULTI_STEP = indexOf("multi-step")
const MATH = indexOf("math")
const CALCULATION = indexOf("calculation")

/**
 * Score thresholds. `moderate` and `complex` apply to the total score; `reasoning` applies to
 * the reasoning part of it.
 */
export interface Thresholds {
  readonly moderate: number
  readonly complex: number
  readonly reasoning: number
}

/** Settings turned into what the hot path reads: a weight per signal index and thresholds. */
export interface Compiled {
  readonly weights: Float64Array
  readonly thresholds: Thresholds
}

/** What the service knows about the conversation around the latest user message. */
export interface ConversationContext {
  readonly trailingToolResults: number
  readonly conversationLength: number
  readonly recentCode: boolean
}

/** The classifier's answer. */
export interface Classification {
  readonly tier: QueryTier
  readonly score: number
  readonly confidence: number
  readonly signals: ReadonlyArray<string>
}

/** Merges partial weights and thresholds over the defaults; a string says what was wrong. */
export const compile = (
  weights: Readonly<Record<string, number | undefined>> | undefined,
  thresholds: { readonly [K in keyof Thresholds]?: number | undefined } | undefined
): Compiled | string => {
  const vector = new Float64Array(signalNames.length)
  signalNames.forEach((name, i) => {
    vector[i] = weights?.[name] ?? defaultWeights[name] ?? 0
  })
  const merged: Thresholds = {
    moderate: thresholds?.moderate ?? defaultThresholds.moderate,
    complex: thresholds?.complex ?? defaultThresholds.complex,
    reasoning: thresholds?.reasoning ?? defaultThresholds.reasoning
  }
  if (!(merged.moderate < merged.complex)) {
    return `thresholds.moderate must be below thresholds.complex, got ${merged.moderate} and ${merged.complex}`
  }
  if (!(merged.reasoning > 0)) return `thresholds.reasoning must be above 0, got ${merged.reasoning}`
  return { weights: vector, thresholds: merged }
}

/** The defaults, compiled once. */
export const defaultCompiled = compile(undefined, undefined) as Compiled

const lexicon = buildTrie(lexicalSignals)
const isReasoning = lexicalSignals.map((signal) => signal.reasoning === true)

const stackTracePattern =
  /^\s+at\s+\S|^\s*file\s+"[^"\n]+",\s+line\s+\d|traceback\s+\(most\s+recent|^\s*[a-z.]*(?:error|exception)\b[^\n]*:/im

const isMathSymbol = (code: number): boolean =>
  code === 0x221a || code === 0x2211 || code === 0x222b || code === 0x2264 || code === 0x2265 ||
  code === 0x2260 || code === 0x00b1 || code === 0x00d7 || code === 0x00f7 || code === 0x03c0 ||
  code === 0x221e || code === 0x2208 || code === 0x2200 || code === 0x2203 || code === 0x00b7 ||
  code === 0x2212

// Per-call scratch, reset at the start of every call; safe because a call never yields.
const hits = new Int32Array(LEXICAL)
const firstLabel = new Int32Array(LEXICAL)
let score = 0
let reasoning = 0

const addSignal = (weights: Float64Array, signals: Array<string>, index: number, towardsReasoning: boolean) => {
  score += weights[index]!
  if (towardsReasoning) reasoning += weights[index]!
  signals.push(signalNames[index]!)
}

const round2 = (x: number): number => Math.round(x * 100) / 100

/** Confidence is 0.5 on a threshold and rises towards 1 with the distance, on this scale. */
const confidenceScale = 1.5

/**
 * Scores `text` (and, from the service, its conversation) with compiled settings. Signals are
 * listed in a stable order: lexical, structural, context.
 */
export const classifyCompiled = (
  text: string,
  compiled: Compiled,
  context?: ConversationContext
): Classification => {
  hits.fill(0)
  let words = 0
  let newlines = 0
  let questions = 0
  let fences = 0
  let backticks = 0
  let codePunctuation = 0
  let mathSymbols = 0
  let equals = 0
  let numbers = 0
  let listItems = 0
  let dataLines = 0
  let commas = 0
  let lineStart = true
  let inNumber = false
  let tickRun = 0
  let previousIsWord = false
  let skipUntil = 0
  const length = text.length
  let betweenWords = true
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i)
    const isWord = isWordCode(code)
    if (isWord && !previousIsWord && i >= skipUntil) {
      const node = longestEntry(lexicon, text, i)
      if (node !== 0) {
        const signal = lexicon.signal[node]!
        if (hits[signal]++ === 0) firstLabel[signal] = node
        skipUntil = lastMatch.end
      }
    }
    previousIsWord = isWord
    if (code === 10) {
      newlines++
      lineStart = true
      betweenWords = true
      inNumber = false
      tickRun = 0
      continue
    }
    if (code === 32 || code === 9 || code === 13) {
      betweenWords = true
      inNumber = false
      tickRun = 0
      continue
    }
    if (betweenWords) {
      words++
      betweenWords = false
    }
    const isDigit = code >= 48 && code <= 57
    if (lineStart) {
      lineStart = false
      const after = i + 1 < length ? text.charCodeAt(i + 1) : 0
      if ((code === 45 || code === 42 || code === 0x2022) && after === 32) listItems++
      else if (isDigit) {
        if (after === 46 || after === 41) listItems++
        else dataLines++
      }
    }
    // Letters are most of any text and need nothing more.
    if (isWord && !isDigit) {
      inNumber = false
      tickRun = 0
      continue
    }
    if (isDigit) {
      if (!inNumber) numbers++
      inNumber = true
      tickRun = 0
      continue
    }
    if (!(inNumber && (code === 46 || code === 44))) inNumber = false
    if (code === 96) {
      backticks++
      if (++tickRun === 3) fences++
      continue
    }
    tickRun = 0
    if (code === 63) questions++
    else if (code === 123 || code === 125 || code === 59) codePunctuation++
    else if (code === 61) equals++
    else if (code === 44) commas++
    else if (code === 94 || (code > 127 && isMathSymbol(code))) mathSymbols++
  }
  if (listItems >= 2) hits[MULTI_STEP]! += 2

  const weights = compiled.weights
  const signals: Array<string> = []
  score = 0
  reasoning = 0
  for (let i = 0; i < LEXICAL; i++) {
    const count = hits[i]!
    const lexical = lexicalSignals[i]!
    if (count === 0 || count < (lexical.minHits ?? 1)) continue
    const contribution = weights[i]! * Math.min(count, lexical.cap)
    score += contribution
    if (isReasoning[i]) reasoning += contribution
    signals.push(i === MULTI_STEP ? lexical.name : lexicon.label[firstLabel[i]!]!)
  }
  const codeBlock = fences >= 1
  const codeLike = !codeBlock && codePunctuation >= 3
  if (codeBlock) addSignal(weights, signals, CODE_BLOCK, false)
  if (codeLike) addSignal(weights, signals, CODE_LIKE, false)
  if (!codeBlock && backticks >= 2) addSignal(weights, signals, INLINE_CODE, false)
  if (newlines >= 1 && stackTracePattern.test(text)) addSignal(weights, signals, STACK_TRACE, false)
  if (dataLines >= 3) addSignal(weights, signals, LOG_LINES, false)
  const prose = !codeBlock && !codeLike && dataLines < 3
  if (prose && (mathSymbols >= 1 || (equals >= 1 && numbers >= 1))) addSignal(weights, signals, MATH_NOTATION, true)
  if (prose && numbers >= 2 && questions >= 1 && (hits[CALCULATION]! > 0 || hits[MATH]! > 0)) {
    addSignal(weights, signals, WORD_PROBLEM, true)
  }
  if (numbers >= 3) addSignal(weights, signals, NUMBERS, false)
  if (questions >= 2) addSignal(weights, signals, MULTI_QUESTION, false)
  if (commas >= 3) addSignal(weights, signals, ENUMERATION, false)
  if (words <= 5) addSignal(weights, signals, SHORT_INPUT, false)
  else if (words >= 150) addSignal(weights, signals, VERY_LONG_INPUT, false)
  else if (words >= 60) addSignal(weights, signals, LONG_INPUT, false)
  if (context !== undefined) {
    if (context.trailingToolResults > 0) addSignal(weights, signals, TOOL_RESULTS, false)
    if (context.conversationLength >= 10) addSignal(weights, signals, LONG_CONVERSATION, false)
    if (context.recentCode && !codeBlock) addSignal(weights, signals, RECENT_CODE, false)
  }
  return decide(score, reasoning, compiled.thresholds, signals)
}

const decide = (
  score: number,
  reasoning: number,
  thresholds: Thresholds,
  signals: ReadonlyArray<string>
): Classification => {
  let tier: QueryTier
  let distance: number
  if (reasoning >= thresholds.reasoning) {
    tier = "reasoning"
    distance = reasoning - thresholds.reasoning
  } else {
    const belowReasoning = thresholds.reasoning - reasoning
    if (score >= thresholds.complex) {
      tier = "complex"
      distance = Math.min(score - thresholds.complex, belowReasoning)
    } else if (score >= thresholds.moderate) {
      tier = "moderate"
      distance = Math.min(score - thresholds.moderate, thresholds.complex - score, belowReasoning)
    } else {
      tier = "simple"
      distance = Math.min(thresholds.moderate - score, belowReasoning)
    }
  }
  const confidence = 0.5 + 0.5 * (1 - Math.exp(-distance / confidenceScale))
  return { tier, score: round2(score), confidence: round2(confidence), signals }
}
