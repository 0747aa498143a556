/**
 * The classifier's vocabulary: every weighted signal, its default weight, and the words that
 * raise the lexical ones. Kept apart from the engine so tuning is a data change.
 *
 * Entry syntax: a trailing `*` matches any word that starts with the stem ("implement*" covers
 * "implementation"); a space matches any run of whitespace; everything else must be a whole word,
 * so "api" never matches inside "capital" and "hi" never inside "think" or "history".
 */

/** Signals found by the lexicon: the weight key, how many hits count, and the entries. */
export interface LexicalSignal {
  readonly name: string
  /** Hits beyond this many add nothing: repeating a word is not more evidence. */
  readonly cap: number
  /** Hits needed before the signal counts at all (a lone "then" is not a sequence of steps). */
  readonly minHits?: number
  /** Reasoning signals also feed the reasoning score, which alone decides the `reasoning` tier. */
  readonly reasoning?: boolean
  readonly entries: ReadonlyArray<string>
}

/**
 * Ordered from the most to the least demanding tier. Each entry belongs to one signal only;
 * where entries overlap ("how many" and "how many ways"), the longest match wins.
 */
export const lexicalSignals: ReadonlyArray<LexicalSignal> = [
  {
    name: "proof",
    reasoning: true,
    cap: 1,
    entries: [
      "prove", "proves", "proving", "proof", "proofs", "derive", "derives", "deriving", "derivation*", "lemma*",
      "corollary", "induction", "contradiction", "rigorous*", "formally", "show that", "counterexample*", "qed",
      "axiom*", "if and only if", "iff", "undecidab*", "justify", "correctness", "invariant*"
    ]
  },
  {
    name: "step-by-step",
    reasoning: true,
    cap: 1,
    entries: [
      "step by step", "step-by-step", "think carefully", "think it through", "think through", "reason carefully",
      "reason through", "reason about", "reasoning", "show your work", "show the work", "work out", "chain of thought",
      "let's reason", "let us reason", "explain each step", "explain your reasoning"
    ]
  },
  {
    name: "math",
    reasoning: true,
    cap: 2,
    entries: [
      "probabilit*", "expected value", "expected number", "integral*", "derivative*", "eigen*", "matrix", "matrices",
      "equation*", "solve for", "integer*", "prime*", "infinitely", "converge*", "diverge*", "series", "maximi*",
      "minimi*", "extrema", "maximum", "minimum", "how many ways", "combinations", "permutations", "modulo", "mod",
      "factorial", "recurrence", "asymptotic*", "polynomial*", "vertices", "geometric", "arithmetic", "theorem",
      "coin", "coins", "die", "dice", "irrational", "rational", "divisible", "exact answer", "approximation",
      "generalize", "generalise", "time complexity", "space complexity", "complexity", "odds", "chance"
    ]
  },
  {
    name: "puzzle",
    reasoning: true,
    cap: 2,
    entries: [
      "puzzle*", "riddle*", "logic", "logical*", "valid", "premise*", "conclude", "syllogism*", "paradox*", "deduce",
      "deduction", "perfect play", "who wins", "winning strategy", "liar*", "knights and knaves", "how do you know",
      "therefore", "older than", "younger than", "taller than", "is it possible", "optimal strategy", "what strategy"
    ]
  },
  {
    name: "calculation",
    reasoning: true,
    cap: 2,
    entries: [
      "calculate", "compute", "how long", "how far", "how thick", "how much will", "at what time", "how much does",
      "which day", "compounded", "interest", "mph", "km/h", "per hour", "per day", "each day", "in total", "each night",
      "meters", "miles"
    ]
  },
  {
    name: "multi-step",
    cap: 1,
    minHits: 2,
    entries: [
      "first", "then", "next", "finally", "after that", "afterwards", "secondly", "thirdly", "lastly", "step 1",
      "step 2", "followed by", "once that"
    ]
  },
  {
    name: "code-task",
    cap: 2,
    entries: [
      "implement*", "refactor*", "build", "builds", "debug*", "optimi*", "migrat*", "deploy*", "integrat*",
      "unit tests", "test suite", "tests", "benchmark*", "middleware", "module", "parser", "command-line", "cli",
      "codebase", "pull request", "script", "hook", "component", "extension", "port this", "convert this",
      "restructure", "handlers", "error handling", "idiomatic", "re-render*", "crash*", "stack trace", "configuration",
      "pipeline", "monorepo", "accessible", "responsive", "cache", "caching", "operations", "app"
    ]
  },
  {
    name: "architecture",
    cap: 2,
    entries: [
      "architect*", "design", "designing", "design doc", "system design", "scalab*", "microservice*", "distributed",
      "multi-tenant", "tenant*", "infrastructure", "topology", "schema", "database", "databases", "data model",
      "throughput", "latency", "high availability", "fault toleran*", "load balanc*", "kafka", "rabbitmq",
      "kubernetes", "terraform", "vpc", "replication", "sharding", "concurrency", "thread-safe", "deadlock*",
      "race condition", "memory leak", "event sourcing", "postgres", "redis", "sqlite", "s3", "search engine",
      "sessions", "subnets", "rate limit*", "ledger", "threat model", "attack surface*", "security", "production",
      "instances", "downtime"
    ]
  },
  {
    name: "planning",
    cap: 2,
    entries: [
      "roadmap", "timeline", "milestones", "proposal", "propose", "business plan", "lesson plan", "migration plan",
      "plan a", "plan the", "investigation", "stakeholders", "experiments", "requirements", "constraints",
      "trade-off*", "tradeoff*", "mitigations", "objectives", "assessments", "negotiation", "detailed", "outline",
      "structure", "strategy for", "marketing", "pricing", "budget"
    ]
  },
  {
    name: "analysis",
    cap: 2,
    entries: [
      "analy*", "evaluate", "assess", "critique", "review", "investigate", "diagnos*", "root cause", "figure out",
      "implications", "comparing", "versus", "recommend what", "rank", "themes", "risks", "likely causes",
      "walk me through", "go through", "in depth"
    ]
  },
  {
    name: "explain",
    cap: 1,
    entries: [
      "explain*", "describe*", "summar*", "overview", "what are the", "what are some", "why", "how does", "how do",
      "how do i",
      "difference between", "differences", "what's the difference", "pros and cons", "compare", "tell me how",
      "tips", "advice", "suggest*", "ideas", "strategies", "example", "steps", "list the", "should i", "what should",
      "how can i", "how to", "best way", "set up", "install*", "configure", "prepare", "improve", "plan for",
      "workout", "rules", "works"
    ]
  },
  {
    name: "writing",
    cap: 1,
    entries: [
      "write", "draft", "rewrite", "compose", "email", "letter", "poem", "haiku", "story", "essay", "message",
      "paragraph", "blog post", "cover letter", "names for", "formal", "tone"
    ]
  },
  {
    name: "code-terms",
    cap: 2,
    entries: [
      "function", "functions", "regex", "sql", "query", "class", "method", "variable", "loop", "array", "string",
      "python", "javascript", "typescript", "java", "rust", "kotlin", "bash", "git", "css", "html", "react", "vue",
      "svelte", "node", "docker", "json", "api", "apis", "endpoint*", "library", "libraries", "framework", "flexbox",
      "npm", "pandas", "csv", "async", "closure", "commit", "environment variable", "one-liner", "next.js", "express",
      "golang", "c++", "linux", "kernel", "gpu", "cuda", "github", "aws", "chrome", "typeerror", "null", "undefined"
    ]
  },
  {
    name: "lookup",
    cap: 1,
    entries: [
      "what is the", "what's the", "what's a", "what is a", "who is", "who was", "who wrote", "who painted",
      "who invented", "when did", "when was", "where is", "what year", "which", "how many", "how much", "how tall",
      "how old", "capital of", "stand for", "stands for", "define", "definition of", "meaning of", "synonym",
      "antonym", "plural of", "spell", "translate", "convert", "what time", "symbol for", "how do you say", "is a",
      "remind me", "recommend a", "tell me a", "square root of"
    ]
  },
  {
    name: "brevity",
    cap: 1,
    entries: [
      "in simple terms", "briefly", "in one sentence", "one word", "quick question", "eli5", "short answer", 
      "in a nutshell", "just the"
    ]
  },
  {
    name: "greeting",
    cap: 1,
    entries: [
      "hi", "hello", "hey", "hiya", "yo", "thanks", "thank you", "thx", "ty", "cheers", "bye", "goodbye",
      "good morning", "good night", "good evening", "good afternoon", "how are you", "ok", "okay", "yes please",
      "yes", "no thanks", "cool", "great", "nice", "lol", "perfect", "joke"
    ]
  }
]

/** Signals read from the text's shape rather than its words. */
export const structuralSignals = [
  "code-block",
  "code-like",
  "inline-code",
  "stack-trace",
  "log-lines",
  "math-notation",
  "word-problem",
  "numbers",
  "multi-question",
  "enumeration",
  "short-input",
  "long-input",
  "very-long-input"
] as const

/** Signals from the conversation around the latest user message (the service only). */
export const contextSignals = ["tool-results", "long-conversation", "recent-code"] as const

/**
 * Default weights. Positive weights push towards the demanding tiers, negative ones towards
 * `simple`; the tier is then read off the thresholds below.
 */
export const defaultWeights: Readonly<Record<string, number>> = {
  "proof": 4,
  "step-by-step": 4,
  "math": 2,
  "puzzle": 3,
  "calculation": 1.5,
  "code-task": 1.75,
  "architecture": 1.5,
  "planning": 1.25,
  "analysis": 1.25,
  "explain": 1.5,
  "writing": 1,
  "code-terms": 0.75,
  "lookup": -1,
  "greeting": -2,
  "brevity": -1,
  "code-block": 3,
  "code-like": 2,
  "inline-code": 0.5,
  "stack-trace": 2.5,
  "log-lines": 2.5,
  "math-notation": 2,
  "word-problem": 1.5,
  "numbers": 0.75,
  "multi-question": 0.5,
  "multi-step": 1,
  "enumeration": 1,
  "short-input": -0.25,
  "long-input": 1,
  "very-long-input": 2,
  "tool-results": 1,
  "long-conversation": 0.75,
  "recent-code": 1.5
}

/** Default score thresholds: at or above `moderate` is moderate, and so on. */
export const defaultThresholds = { moderate: 1, complex: 3.5, reasoning: 4 } as const
