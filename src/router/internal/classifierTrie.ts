/**
 * The classifier's word matcher: the lexicon as a character trie over a small alphabet (letters
 * folded to lower case, digits, whitespace, a few punctuation marks), walked from a word start to
 * the longest entry found there. Characters outside the alphabet end a walk.
 *
 * Nodes with many children (the root, the first letters) keep a dense row of transitions; the
 * others, most with one or two children, keep a short list of edges. A dense table for every node
 * was ~0.8 MB and the walk spent its time on cache misses; lists everywhere made it scan long
 * lists near the root. This layout is a few tens of KB.
 */
import type { LexicalSignal } from "./classifierLexicon.js"

const SPACE = 1
const STRIDE = 43
// ASCII lookup tables: the symbol of each character in the trie's alphabet (0 = outside it), and
// whether it is a word character for boundaries (letters, digits, underscore).
const asciiSymbol = new Uint8Array(128)
const asciiWord = new Uint8Array(128)
for (let code = 0; code < 128; code++) {
  if (code >= 97 && code <= 122) asciiSymbol[code] = code - 95
  else if (code >= 65 && code <= 90) asciiSymbol[code] = code - 63
  else if (code >= 48 && code <= 57) asciiSymbol[code] = code - 20
  else if (code === 32 || code === 9 || code === 10 || code === 13) asciiSymbol[code] = SPACE
  else if (code === 39) asciiSymbol[code] = 38
  else if (code === 45) asciiSymbol[code] = 39
  else if (code === 46) asciiSymbol[code] = 40
  else if (code === 43) asciiSymbol[code] = 41
  else if (code === 47) asciiSymbol[code] = 42
  asciiWord[code] = (asciiSymbol[code]! >= 2 && asciiSymbol[code]! <= 37) || code === 95 ? 1 : 0
}

// The typographic apostrophe reads as the plain one, so "what’s" matches "what's".
const alphabet = (code: number): number => (code < 128 ? asciiSymbol[code]! : code === 0x2019 ? 38 : 0)

/** Word characters for boundaries; accented Latin letters count, so "café" never matches "caf". */
export const isWordCode = (code: number): boolean =>
  code < 128 ? asciiWord[code] === 1 : code >= 0xc0 && code <= 0x24f && code !== 0xd7 && code !== 0xf7

/** Children from which a node gets a dense row. */
const denseFrom = 4

const END_NONE = 0
const END_WORD = 1
const END_STEM = 2

/** The compiled trie: node 0 is the root; `signal` and `label` are set on nodes that end an entry. */
export interface Trie {
  /** A node's row in `dense`, or -1 when its edges are listed. */
  readonly denseRow: Int32Array
  readonly dense: Uint16Array
  /** Node `n`'s edges are `edgeSymbol`/`edgeTarget` from `firstEdge[n]` up to `firstEdge[n + 1]`. */
  readonly firstEdge: Uint32Array
  readonly edgeSymbol: Uint8Array
  readonly edgeTarget: Uint16Array
  readonly end: Uint8Array
  readonly signal: Int16Array
  /** What a match shows users: `<signal>:<entry>`, e.g. "proof:prove". */
  readonly label: ReadonlyArray<string>
}

/** Builds the trie; a lexicon mistake (an entry listed twice, a character outside the alphabet) throws. */
export const buildTrie = (lexicalSignals: ReadonlyArray<LexicalSignal>): Trie => {
  const transitions: Array<number> = []
  const ends: Array<number> = [END_NONE]
  const signals: Array<number> = [-1]
  const labels: Array<string> = [""]
  const seen = new Set<string>()
  for (let i = 0; i < STRIDE; i++) transitions.push(0)
  lexicalSignals.forEach((lexical, signalIndex) => {
    for (const raw of lexical.entries) {
      const stem = raw.endsWith("*")
      const word = stem ? raw.slice(0, -1) : raw
      if (seen.has(word)) throw new Error(`classifier lexicon: "${word}" is listed twice`)
      if (!isWordCode(word.charCodeAt(0))) throw new Error(`classifier lexicon: "${word}" must start a word`)
      seen.add(word)
      let node = 0
      for (let k = 0; k < word.length; k++) {
        const symbol = alphabet(word.charCodeAt(k))
        if (symbol === 0) throw new Error(`classifier lexicon: "${word}" has a character outside the alphabet`)
        let target = transitions[node * STRIDE + symbol]!
        if (target === 0) {
          target = ends.length
          ends.push(END_NONE)
          signals.push(-1)
          labels.push("")
          for (let s = 0; s < STRIDE; s++) transitions.push(0)
          transitions[node * STRIDE + symbol] = target
        }
        node = target
      }
      ends[node] = stem ? END_STEM : END_WORD
      signals[node] = signalIndex
      labels[node] = `${lexical.name}:${word}`
    }
  })
  const nodes = ends.length
  if (nodes > 0xffff) throw new Error("classifier lexicon: too many trie nodes for 16-bit edges")
  const firstEdge = new Uint32Array(nodes + 1)
  const denseRow = new Int32Array(nodes).fill(-1)
  const dense: Array<number> = []
  const edgeSymbol: Array<number> = []
  const edgeTarget: Array<number> = []
  for (let node = 0; node < nodes; node++) {
    firstEdge[node] = edgeSymbol.length
    const row = transitions.slice(node * STRIDE, (node + 1) * STRIDE)
    if (row.filter((target) => target !== 0).length >= denseFrom) {
      denseRow[node] = dense.length / STRIDE
      dense.push(...row)
      continue
    }
    row.forEach((target, symbol) => {
      if (target !== 0) {
        edgeSymbol.push(symbol)
        edgeTarget.push(target)
      }
    })
  }
  firstEdge[nodes] = edgeSymbol.length
  return {
    denseRow,
    dense: Uint16Array.from(dense),
    firstEdge,
    edgeSymbol: Uint8Array.from(edgeSymbol),
    edgeTarget: Uint16Array.from(edgeTarget),
    end: Uint8Array.from(ends),
    signal: Int16Array.from(signals),
    label: labels
  }
}

const step = (trie: Trie, node: number, symbol: number): number => {
  const row = trie.denseRow[node]!
  if (row >= 0) return trie.dense[row * STRIDE + symbol]!
  const { edgeSymbol, firstEdge } = trie
  for (let k = firstEdge[node]!, last = firstEdge[node + 1]!; k < last; k++) {
    if (edgeSymbol[k] === symbol) return trie.edgeTarget[k]!
  }
  return 0
}

/** Where the last successful `longestEntry` walk ended (kept here so a walk allocates nothing). */
export const lastMatch = { end: 0 }

/**
 * Walks the trie from `start` and returns the node of the longest entry found there, 0 when
 * none; a whole-word entry must not run on into more word characters, a stem may.
 */
export const longestEntry = (trie: Trie, text: string, start: number): number => {
  const end = trie.end
  const length = text.length
  let node = 0
  let best = 0
  let i = start
  while (i < length) {
    const symbol = alphabet(text.charCodeAt(i))
    if (symbol === 0) break
    const target = step(trie, node, symbol)
    if (target === 0) break
    node = target
    i++
    // Entries separate words by one space; the text may use any run of whitespace.
    if (symbol === SPACE) while (i < length && alphabet(text.charCodeAt(i)) === SPACE) i++
    const kind = end[node]!
    if (kind === END_STEM || (kind === END_WORD && (i >= length || !isWordCode(text.charCodeAt(i))))) {
      best = node
      lastMatch.end = i
    }
  }
  return best
}
