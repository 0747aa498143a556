/**
 * The labelled evaluation set for the query classifier, shared by its test (which gates accuracy)
 * and by `scripts/bench/classifier.ts` (which times it). Written and labelled before the
 * classifier was tuned.
 *
 * How a label was chosen — the cheapest tier whose model would answer well:
 * - `simple`: a greeting, chit-chat, one fact, a definition, a conversion or a one-line rewrite.
 * - `moderate`: an explanation or how-to of something well known, a short piece of writing, a
 *   summary, a small snippet of code, a comparison of two familiar options.
 * - `complex`: substantial code to write, review or debug (code, stack traces, logs), system or
 *   architecture design, a plan under several constraints, a multi-part deliverable.
 * - `reasoning`: proofs, derivations, multi-step math and word problems, probability, logic
 *   puzzles, arguments about correctness or complexity that need a careful chain of steps.
 *
 * `acceptable` lists a neighbouring tier only where the label is honestly debatable.
 */
import type { QueryTier } from "../../src/domain/Message.js"

/** One labelled prompt. */
export interface EvalCase {
  readonly text: string
  readonly tier: QueryTier
  readonly acceptable?: ReadonlyArray<QueryTier>
}

const simple: ReadonlyArray<EvalCase> = [
  { text: "hi", tier: "simple" },
  { text: "Hello there!", tier: "simple" },
  { text: "thanks, that's perfect", tier: "simple" },
  { text: "What's the capital of France?", tier: "simple" },
  { text: "Who wrote Pride and Prejudice?", tier: "simple" },
  { text: "How many ounces are in a pound?", tier: "simple" },
  { text: "What time zone is Tokyo in?", tier: "simple" },
  { text: "Translate 'good morning' into Spanish.", tier: "simple" },
  { text: "What does HTTP stand for?", tier: "simple" },
  { text: "Is a tomato a fruit?", tier: "simple" },
  { text: "Define 'ephemeral'.", tier: "simple" },
  { text: "What's 15% of 80?", tier: "simple" },
  { text: "When did the Berlin Wall fall?", tier: "simple" },
  { text: "good night!", tier: "simple" },
  { text: "What is the boiling point of water in Fahrenheit?", tier: "simple" },
  { text: "Spell 'necessary' for me", tier: "simple" },
  { text: "Who is the CEO of Microsoft?", tier: "simple" },
  { text: "What's a synonym for happy?", tier: "simple" },
  { text: "Convert 10 km to miles.", tier: "simple" },
  { text: "How do you say thank you in Japanese?", tier: "simple" },
  { text: "ok", tier: "simple" },
  { text: "Which planet is closest to the sun?", tier: "simple" },
  { text: "What year did World War II end?", tier: "simple" },
  { text: "Tell me a joke.", tier: "simple" },
  { text: "What's the history of the name 'Canada' in one sentence?", tier: "simple", acceptable: ["moderate"] },
  { text: "Is Python case-sensitive?", tier: "simple" },
  { text: "What port does HTTPS use by default?", tier: "simple" },
  { text: "What is the capital of Australia?", tier: "simple" },
  { text: "How many legs does a spider have?", tier: "simple" },
  { text: "yes please", tier: "simple" },
  { text: "What's the plural of 'cactus'?", tier: "simple" },
  { text: "Who painted the Mona Lisa?", tier: "simple" },
  { text: "What does the command git status show?", tier: "simple", acceptable: ["moderate"] },
  { text: "What is the chemical symbol for gold?", tier: "simple" },
  { text: "Recommend a good sci-fi book.", tier: "simple" },
  { text: "hey, how are you?", tier: "simple" },
  { text: "What's the square root of 144?", tier: "simple" },
  { text: "Can you remind me what RAM stands for?", tier: "simple" },
  { text: "What's the weather usually like in Lisbon in May?", tier: "simple" },
  { text: "Give me a capitalized version of: the quick brown fox", tier: "simple" },
  { text: "I think I'm done for today, bye!", tier: "simple" },
  { text: "What does API stand for?", tier: "simple" }
]

const moderate: ReadonlyArray<EvalCase> = [
  { text: "How do I reverse a list in Python?", tier: "moderate", acceptable: ["simple"] },
  { text: "Explain the difference between TCP and UDP.", tier: "moderate" },
  { text: "Write a short birthday message for my coworker who loves hiking.", tier: "moderate", acceptable: ["simple"] },
  { text: "Summarize the plot of Hamlet in a paragraph.", tier: "moderate" },
  { text: "What are the main causes of inflation?", tier: "moderate" },
  { text: "How does HTTPS keep data secure?", tier: "moderate" },
  { text: "Give me a regex that matches US zip codes, including the optional 4-digit suffix.", tier: "moderate" },
  { text: "What are the pros and cons of remote work?", tier: "moderate" },
  { text: "How do I undo the last commit in git without losing my changes?", tier: "moderate" },
  { text: "Explain what a closure is in JavaScript with a small example.", tier: "moderate" },
  { text: "Write a haiku about autumn rain.", tier: "moderate", acceptable: ["simple"] },
  { text: "How should I prepare for a job interview at a startup?", tier: "moderate" },
  { text: "What's the difference between a virus and a bacterium?", tier: "moderate" },
  {
    text: "Rewrite this sentence to sound more formal: 'hey, we can't make it to the meeting, sorry'",
    tier: "moderate",
    acceptable: ["simple"]
  },
  { text: "How do I center a div with flexbox?", tier: "moderate" },
  { text: "Describe how photosynthesis works.", tier: "moderate" },
  { text: "Suggest five names for a coffee shop with a book theme.", tier: "moderate", acceptable: ["simple"] },
  { text: "What is dependency injection and why is it useful?", tier: "moderate" },
  {
    text: "Convert this to a SQL query: get all users who signed up in the last 7 days, newest first.",
    tier: "moderate"
  },
  { text: "How do vaccines train the immune system?", tier: "moderate" },
  { text: "Write a Python function that checks whether a string is a palindrome.", tier: "moderate" },
  { text: "Compare React and Vue for a small internal dashboard.", tier: "moderate", acceptable: ["complex"] },
  { text: "What should I pack for a three-day hiking trip?", tier: "moderate" },
  { text: "Explain the CAP theorem in simple terms.", tier: "moderate" },
  { text: "How do I set an environment variable permanently on macOS?", tier: "moderate" },
  { text: "Draft a polite email asking my landlord to fix the heating.", tier: "moderate" },
  { text: "What is the time complexity of binary search and why?", tier: "moderate" },
  { text: "Give me a weekly workout plan for a beginner with 3 days available.", tier: "moderate" },
  { text: "What does async/await do in JavaScript?", tier: "moderate" },
  { text: "How can I improve my sleep?", tier: "moderate" },
  { text: "Explain what a Docker volume is and when to use one.", tier: "moderate" },
  { text: "List the steps to make a sourdough starter.", tier: "moderate" },
  { text: "What's the difference between 'affect' and 'effect'?", tier: "moderate", acceptable: ["simple"] },
  { text: "Why is the sky blue?", tier: "moderate", acceptable: ["simple"] },
  { text: "Write a bash one-liner that counts lines in all .ts files under src.", tier: "moderate" },
  { text: "How do I read a CSV file with pandas and drop rows with missing values?", tier: "moderate" },
  { text: "Explain the rules of castling in chess.", tier: "moderate" },
  { text: "What are some good strategies for paying off credit card debt?", tier: "moderate" },
  { text: "Tell me how the OAuth 2.0 authorization code flow works.", tier: "moderate", acceptable: ["complex"] },
  {
    text: "Can you explain what this error means: TypeError: Cannot read properties of undefined (reading 'map')",
    tier: "moderate",
    acceptable: ["complex"]
  },
  { text: "What's the difference between let, const and var?", tier: "moderate" },
  { text: "Explain recursion to a 10-year-old.", tier: "moderate" }
]

const complex: ReadonlyArray<EvalCase> = [
  {
    text: "Write a TypeScript module that implements an LRU cache with a max size and a TTL per entry, with unit tests.",
    tier: "complex"
  },
  {
    text: `My Node server crashes on startup with this:

Error: listen EADDRINUSE: address already in use :::3000
    at Server.setupListenHandle [as _listen2] (node:net:1817:16)
    at listenInCluster (node:net:1865:12)
    at Server.listen (node:net:1953:7)
    at Object.<anonymous> (/app/src/server.js:42:8)

I already killed the old process but it keeps happening after nodemon restarts. How do I fix this properly?`,
    tier: "complex",
    acceptable: ["moderate"]
  },
  {
    text:
      "Design the architecture for a multi-tenant SaaS invoicing system: data model, tenant isolation, background jobs for recurring invoices, and how you'd handle currency conversion.",
    tier: "complex"
  },
  {
    text: `Refactor this function to be testable and remove the global state:
\`\`\`js
let cache = {}
function getUser(id) {
  if (cache[id]) return cache[id]
  const user = db.query('select * from users where id = ' + id)
  cache[id] = user
  return user
}
\`\`\``,
    tier: "complex"
  },
  {
    text: "Build a REST API in Go for a todo app with Postgres, including migrations, handlers, and error handling.",
    tier: "complex"
  },
  {
    text: `Traceback (most recent call last):
  File "train.py", line 88, in <module>
    loss.backward()
  File "/usr/lib/python3.11/site-packages/torch/_tensor.py", line 487, in backward
RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB

I'm fine-tuning a 7B model on a 24GB GPU with batch size 8. What are my options to make it fit, and which would you try first?`,
    tier: "complex"
  },
  {
    text:
      "Plan a migration of our monolithic Django app to microservices over six months. We have 4 engineers, a Postgres database shared by everything, and we can't have more than 5 minutes of downtime.",
    tier: "complex"
  },
  {
    text:
      "Write a React hook useDebouncedSearch that cancels in-flight fetch requests when the query changes, handles errors, and exposes loading state.",
    tier: "complex"
  },
  {
    text:
      "Our Kubernetes pods get OOMKilled every few hours but the memory graphs look flat. Walk me through how to investigate this, which metrics and tools to check, and the likely causes.",
    tier: "complex"
  },
  {
    text: `Review this SQL schema for an e-commerce store and suggest indexes and normalization fixes:
\`\`\`sql
CREATE TABLE orders (id serial, customer_name text, customer_email text, items text, total numeric, created_at timestamp);
\`\`\``,
    tier: "complex"
  },
  {
    text: "Implement a rate limiter middleware for Express using a token bucket stored in Redis, safe across multiple instances.",
    tier: "complex"
  },
  {
    text:
      "Write a detailed business plan outline for a subscription meal-kit service targeting college students, including pricing, logistics, and marketing channels.",
    tier: "complex"
  },
  {
    text:
      "Analyze the trade-offs between event sourcing and a traditional CRUD model for a banking ledger, and recommend one for a team new to both.",
    tier: "complex",
    acceptable: ["reasoning"]
  },
  {
    text:
      "Create a CI pipeline in GitHub Actions that runs tests on three Node versions, caches dependencies, builds a Docker image and deploys to staging only on the main branch.",
    tier: "complex"
  },
  {
    text: `Here are the termination clauses from a supplier contract we are about to sign. Clause 12.1 lets the supplier end the agreement with 30 days notice for any reason, while we need 180 days notice and must pay the remaining minimum volume. Clause 12.4 says that price changes announced in the supplier's annual price list apply automatically. Clause 14 caps their liability at one month of fees, but our indemnity to them is unlimited. Clause 15 puts disputes under the courts of their home country.

Go through these clauses, explain the risks for us in plain language, rank them by severity, and propose alternative wording we could send back in the negotiation.`,
    tier: "complex"
  },
  {
    text: `Convert this callback-based code to async/await and add proper error handling:
\`\`\`js
fs.readFile(path, (err, data) => {
  if (err) return cb(err)
  parse(data, (err, obj) => {
    if (err) return cb(err)
    db.save(obj, cb)
  })
})
\`\`\``,
    tier: "complex",
    acceptable: ["moderate"]
  },
  {
    text:
      "Write a Python script that watches a directory, parses new CSV files, validates each row against a schema, writes valid rows to SQLite and reports invalid ones by email.",
    tier: "complex"
  },
  {
    text:
      "Design a database schema for a library management system with members, loans, reservations and fines, and write the SQL for the most common queries.",
    tier: "complex"
  },
  {
    text: `Why does my React component re-render infinitely?
\`\`\`jsx
function Profile({ id }) {
  const [user, setUser] = useState(null)
  useEffect(() => {
    fetch(\`/api/users/\${id}\`).then(r => r.json()).then(setUser)
  })
  return <div>{user?.name}</div>
}
\`\`\``,
    tier: "complex",
    acceptable: ["moderate"]
  },
  {
    text:
      "Set up a monorepo with pnpm workspaces, a shared TypeScript config, a Next.js app and two internal libraries, and explain how builds and versioning should work.",
    tier: "complex"
  },
  {
    text:
      "Write a technical design doc for adding full-text search to our product catalog (2M items), comparing Postgres FTS, Elasticsearch and Meilisearch on cost, latency and operational burden.",
    tier: "complex"
  },
  { text: "Implement a trie in Rust with insert, search and prefix iteration, plus benchmarks.", tier: "complex" },
  {
    text:
      "Our checkout conversion dropped 12% after the redesign. Here's what changed: a new address form, guest checkout removed, the promo code field moved, and a mandatory account step added. Put together an investigation plan and the experiments you'd run.",
    tier: "complex"
  },
  {
    text:
      "Write a Terraform configuration for an AWS VPC with public and private subnets across two AZs, a NAT gateway, and an RDS instance in the private subnets.",
    tier: "complex"
  },
  {
    text:
      "Explain how the Linux kernel schedules processes with CFS, including virtual runtime, the red-black tree, and how nice values affect weights.",
    tier: "complex",
    acceptable: ["moderate"]
  },
  {
    text: `I'm getting intermittent deadlocks in Postgres between two transactions that update the same rows in different orders. Here's the log:
ERROR: deadlock detected
DETAIL: Process 4211 waits for ShareLock on transaction 99812; blocked by process 4198.
Process 4198 waits for ShareLock on transaction 99811; blocked by process 4211.
How should I restructure the code to avoid it?`,
    tier: "complex"
  },
  {
    text:
      "Create a lesson plan for a two-week unit on the French Revolution for 10th graders, with daily objectives, activities, and assessments.",
    tier: "complex"
  },
  {
    text:
      "Write a parser for a small arithmetic expression language with variables, operator precedence and parentheses, in TypeScript, returning an AST.",
    tier: "complex"
  },
  {
    text: `Optimize this slow query; it takes 9 seconds on a 50M row table:
\`\`\`sql
SELECT user_id, count(*) FROM events WHERE date_trunc('day', created_at) = '2024-03-01' GROUP BY user_id ORDER BY 2 DESC LIMIT 20;
\`\`\``,
    tier: "complex"
  },
  {
    text:
      "Help me structure a 20-minute conference talk on observability for small teams: outline, key messages, demo ideas, and timing for each section.",
    tier: "complex",
    acceptable: ["moderate"]
  },
  {
    text:
      "Implement Google login in a Next.js app using the app router, storing sessions in a database, and protecting the API routes.",
    tier: "complex"
  },
  {
    text:
      "We need to choose between Kafka and RabbitMQ for order processing at about 5k msgs/sec with strict per-customer ordering. Compare them for our case and propose a topology.",
    tier: "complex"
  },
  {
    text:
      "Write a bash script that backs up several Postgres databases nightly, rotates backups older than 14 days, uploads them to S3 and alerts on failure.",
    tier: "complex"
  },
  {
    text: `Port this Python class to idiomatic Kotlin and keep the same behaviour:
\`\`\`python
class Account:
    def __init__(self, owner, balance=0):
        self.owner = owner
        self.balance = balance
    def withdraw(self, amount):
        if amount > self.balance:
            raise ValueError('insufficient funds')
        self.balance -= amount
        return self.balance
\`\`\``,
    tier: "complex",
    acceptable: ["moderate"]
  },
  {
    text: "Draft a security threat model for a mobile banking app: assets, threat actors, attack surfaces, and mitigations.",
    tier: "complex"
  },
  {
    text:
      "Write an accessible, responsive navbar component in Svelte with a mobile menu, keyboard navigation and ARIA attributes.",
    tier: "complex"
  },
  {
    text:
      "Our team keeps missing sprint goals. We have 6 developers, lots of unplanned support work and unclear tickets. Propose a process change plan and how to measure whether it works.",
    tier: "complex"
  },
  {
    text:
      "Build a command-line tool in Python that syncs a local folder with an S3 bucket, supports dry-run and exclude patterns, and uploads in parallel.",
    tier: "complex"
  },
  {
    text: `Given this log excerpt, figure out why the service restarts:
2024-05-01T10:00:01Z INFO starting worker pool size=16
2024-05-01T10:00:09Z WARN queue depth 12000
2024-05-01T10:00:15Z ERROR heartbeat missed for 10s
2024-05-01T10:00:15Z INFO received SIGTERM
2024-05-01T10:00:16Z INFO shutting down`,
    tier: "complex"
  },
  {
    text:
      "Write a Chrome extension that highlights all prices on a page and converts them into a user-selected currency using a live exchange-rate API.",
    tier: "complex"
  },
  {
    text:
      "Implement a thread-safe bounded blocking queue in Java with put and take operations and timeouts, and explain how you avoid lost wake-ups.",
    tier: "complex"
  },
  {
    text: `Group this customer feedback into themes, count how often each comes up, and recommend what to fix first:
- "The app logs me out every day"
- "Export to Excel is broken since the update"
- "I love the new dashboard but it's slow on my phone"
- "Why do I have to log in again all the time?"
- "Please add dark mode"
- "Sync with Google Calendar misses events"
- "Loading the reports page takes forever"`,
    tier: "complex",
    acceptable: ["moderate"]
  }
]

const reasoning: ReadonlyArray<EvalCase> = [
  { text: "Prove that the square root of 2 is irrational.", tier: "reasoning" },
  { text: "Prove by induction that 1 + 2 + ... + n = n(n+1)/2.", tier: "reasoning" },
  {
    text:
      "A bat and a ball cost $1.10 in total. The bat costs $1.00 more than the ball. How much does the ball cost? Think it through carefully.",
    tier: "reasoning"
  },
  {
    text: "Think step by step: if all bloops are razzies and all razzies are lazzies, are all bloops definitely lazzies?",
    tier: "reasoning"
  },
  { text: "Derive the formula for the sum of a geometric series.", tier: "reasoning" },
  {
    text:
      "A train leaves Chicago at 2pm going 60 mph. Another leaves St. Louis, 300 miles away, at 3pm going 75 mph toward Chicago. At what time do they meet?",
    tier: "reasoning"
  },
  {
    text: "What is the probability of getting at least one six in four rolls of a fair die? Show your work.",
    tier: "reasoning"
  },
  { text: "Show that there are infinitely many prime numbers.", tier: "reasoning" },
  {
    text:
      "Three boxes are labelled apples, oranges, and mixed, and every label is wrong. You may pick one fruit from one box. How do you relabel all the boxes correctly? Explain why it works.",
    tier: "reasoning"
  },
  { text: "Solve for x: 2^(x+1) = 3^(x-1). Give an exact answer and a decimal approximation.", tier: "reasoning" },
  {
    text:
      "Is the following argument valid? 'If it rains, the ground is wet. The ground is wet. Therefore it rained.' Explain the logical form.",
    tier: "reasoning",
    acceptable: ["moderate"]
  },
  {
    text:
      "You have 12 coins, one of which is counterfeit and either heavier or lighter. Using a balance scale three times, how do you find it and tell whether it is heavier or lighter?",
    tier: "reasoning"
  },
  { text: "Derive the time complexity of merge sort from the recurrence T(n) = 2T(n/2) + n.", tier: "reasoning" },
  {
    text: "In how many ways can 8 rooks be placed on a chessboard so that none attack each other? Justify the count.",
    tier: "reasoning"
  },
  { text: "Find all integer solutions to x^2 - y^2 = 45.", tier: "reasoning" },
  {
    text:
      "A disease affects 1 in 1,000 people. A test is 99% sensitive and 95% specific. If someone tests positive, what is the chance they have the disease? Reason carefully.",
    tier: "reasoning"
  },
  { text: "Prove that every tree with n vertices has exactly n-1 edges.", tier: "reasoning" },
  {
    text:
      "Let f(x) = x^3 - 6x^2 + 9x + 1. Find the local extrema and determine whether each is a maximum or a minimum.",
    tier: "reasoning"
  },
  {
    text: "Monty Hall: after the host opens a goat door, should you switch? Explain the probabilities rigorously.",
    tier: "reasoning"
  },
  {
    text:
      "Work out step by step how much I'll have after 10 years if I invest $5,000 at 6% compounded monthly and add $200 at the end of each month.",
    tier: "reasoning"
  },
  {
    text:
      "Is this algorithm correct? It claims to find the majority element by keeping a candidate and a counter (Boyer-Moore voting). Prove its correctness or give a counterexample.",
    tier: "reasoning"
  },
  {
    text:
      "Alice is older than Bob. Carol is younger than Dan but older than Alice. Eve is the youngest. Who is the second oldest, and how do you know?",
    tier: "reasoning"
  },
  { text: "Evaluate the integral of x·e^x from 0 to 1 and explain each step.", tier: "reasoning" },
  { text: "Why does 0.999... equal 1? Give a rigorous argument, not just intuition.", tier: "reasoning" },
  { text: "Show that the halting problem is undecidable.", tier: "reasoning" },
  {
    text:
      "A farmer has 120 meters of fencing and wants to enclose a rectangular area against a river, with no fence needed on the river side. What dimensions maximize the area, and what is the maximum area?",
    tier: "reasoning"
  },
  {
    text:
      "If I fold a piece of paper 0.1 mm thick in half 42 times, how thick is it? Reason about whether that's physically possible.",
    tier: "reasoning",
    acceptable: ["moderate"]
  },
  {
    text:
      "Two players alternately take 1 to 3 stones from a pile of 21; whoever takes the last stone wins. Who wins with perfect play and what's the strategy? Prove it.",
    tier: "reasoning"
  },
  {
    text: "Determine whether the series sum of 1/(n ln n) from n=2 to infinity converges, and justify your answer.",
    tier: "reasoning"
  },
  {
    text:
      "Let's reason about this carefully: with open addressing, linear probing and a load factor of 0.9, what is the expected number of probes for an unsuccessful search, and why does clustering make it worse?",
    tier: "reasoning",
    acceptable: ["complex"]
  },
  {
    text: "Given the premises 'No cats are dogs' and 'Some pets are dogs', what can we conclude about pets and cats?",
    tier: "reasoning",
    acceptable: ["moderate"]
  },
  {
    text: "Calculate the expected number of coin flips needed to get two heads in a row, deriving it with a recurrence.",
    tier: "reasoning"
  },
  { text: "Prove that the angles of a triangle add up to 180 degrees in Euclidean geometry.", tier: "reasoning" },
  {
    text:
      "A snail climbs 3 meters up a 20-meter well each day and slips back 2 meters each night. On which day does it get out? Explain your reasoning.",
    tier: "reasoning"
  },
  { text: "Find the eigenvalues and eigenvectors of the matrix [[2, 1], [1, 2]] and verify them.", tier: "reasoning" },
  {
    text:
      "There are 100 prisoners and 100 boxes, each holding a random prisoner's number. Each prisoner may open 50 boxes. What strategy gives them about a 31% chance of all succeeding, and why does it work?",
    tier: "reasoning"
  },
  { text: "Is P(A and B) ≥ P(A) + P(B) − 1 always true? Prove it or find a counterexample.", tier: "reasoning" },
  { text: "Compute 7^222 mod 13 without a calculator and show the reasoning.", tier: "reasoning" },
  {
    text:
      "My recursive Fibonacci function uses memoization. Reason through its time and space complexity, and prove the bound on the number of calls.",
    tier: "reasoning",
    acceptable: ["complex"]
  },
  {
    text:
      "We flip a fair coin until we see heads. What's the expected number of tails? Then generalize to a biased coin with probability p of heads.",
    tier: "reasoning"
  },
  { text: "Explain why the induction proof that all horses are the same colour fails.", tier: "reasoning" },
  { text: "How many trailing zeros does 100! have? Derive it.", tier: "reasoning" }
]

/**
 * Prompts written after the classifier was tuned on the set above and never tuned against: their
 * score estimates how the classifier does on text it was not fitted to.
 */
export const classifierHoldoutSet: ReadonlyArray<EvalCase> = [
  { text: "morning!", tier: "simple" },
  { text: "What's the tallest mountain in Africa?", tier: "simple" },
  { text: "How many days are in a leap year?", tier: "simple" },
  { text: "Who discovered penicillin?", tier: "simple" },
  { text: "What language do they speak in Brazil?", tier: "simple" },
  { text: "cool, thanks a lot", tier: "simple" },
  { text: "What's the opposite of 'generous'?", tier: "simple" },
  { text: "Is it safe to eat raw oats?", tier: "simple", acceptable: ["moderate"] },
  { text: "What currency does Switzerland use?", tier: "simple" },
  { text: "Which is bigger, a kilobyte or a megabyte?", tier: "simple" },
  { text: "what's the keyboard shortcut to copy on a Mac", tier: "simple" },
  { text: "Who won the 2018 World Cup?", tier: "simple" },
  { text: "How does a refrigerator keep food cold?", tier: "moderate" },
  { text: "Write a cover letter opening paragraph for a junior data analyst role.", tier: "moderate" },
  { text: "What's the difference between stocks and bonds?", tier: "moderate" },
  { text: "How do I make a git branch track a remote branch?", tier: "moderate" },
  { text: "Explain what an index does in a database.", tier: "moderate" },
  { text: "Give me three tips for writing clearer emails.", tier: "moderate", acceptable: ["simple"] },
  { text: "Write a JavaScript function that removes duplicates from an array.", tier: "moderate" },
  { text: "Why do cats purr?", tier: "moderate", acceptable: ["simple"] },
  { text: "Summarize the main ideas of stoicism.", tier: "moderate" },
  { text: "How can I make my sourdough bread more sour?", tier: "moderate" },
  { text: "What are the benefits of using TypeScript over JavaScript?", tier: "moderate" },
  { text: "Describe the water cycle for a school presentation.", tier: "moderate" },
  {
    text:
      "Write a Node.js service that consumes messages from SQS, retries failures with exponential backoff, and writes results to DynamoDB, with tests.",
    tier: "complex"
  },
  {
    text:
      "Design a notification system that sends email, SMS and push notifications to 10 million users, with user preferences, rate limits and delivery tracking.",
    tier: "complex"
  },
  {
    text: `This test fails only in CI:
\`\`\`
FAIL src/cart.test.ts
  ● Cart › applies discount
    expect(received).toBe(expected)
    Expected: 90
    Received: 89.99999999999999
      at Object.<anonymous> (src/cart.test.ts:14:29)
\`\`\`
What is going on and how should the pricing code be fixed?`,
    tier: "complex",
    acceptable: ["moderate"]
  },
  {
    text:
      "Create a 12-week content marketing plan for a B2B cybersecurity startup, with themes per month, channels, and KPIs.",
    tier: "complex"
  },
  {
    text:
      "Refactor our Express app's error handling so every route returns RFC 7807 problem details, and add middleware for validation errors and logging.",
    tier: "complex"
  },
  {
    text:
      "Compare three approaches for syncing offline edits in a mobile app (last-write-wins, operational transforms, CRDTs) and recommend one for a note-taking app.",
    tier: "complex",
    acceptable: ["reasoning"]
  },
  {
    text: "Write a Dockerfile and docker-compose setup for a Django app with Celery workers, Redis and Postgres, for local development and production.",
    tier: "complex"
  },
  {
    text:
      "Our API p95 latency doubled after moving to a new cloud region. Give me a systematic plan to find the cause, covering network, database and application layers.",
    tier: "complex"
  },
  {
    text: "Implement a simple in-memory key-value store in Go with TTLs, snapshotting to disk, and a TCP interface.",
    tier: "complex"
  },
  {
    text: "Write a GraphQL schema and resolvers for a blog with posts, comments, authors and pagination.",
    tier: "complex"
  },
  {
    text:
      "Plan a two-week trip to Japan for a family with two young kids on a moderate budget, including cities, transport passes, and daily itineraries.",
    tier: "complex",
    acceptable: ["moderate"]
  },
  {
    text: "Migrate this jQuery code to React and explain the component structure you chose.",
    tier: "complex",
    acceptable: ["moderate"]
  },
  { text: "Prove that the product of two odd numbers is odd.", tier: "reasoning" },
  {
    text: "How many handshakes happen if 12 people each shake hands with everyone else once? Explain how you count them.",
    tier: "reasoning",
    acceptable: ["moderate"]
  },
  { text: "Show that log base 2 of 3 is irrational.", tier: "reasoning" },
  {
    text:
      "A car travels 150 km at 50 km/h and returns at 75 km/h. What is its average speed for the whole trip, and why isn't it 62.5 km/h?",
    tier: "reasoning"
  },
  { text: "Think step by step: which is larger, 2^100 or 10^30?", tier: "reasoning" },
  {
    text: "If you draw two cards from a standard deck without replacement, what's the probability both are aces?",
    tier: "reasoning"
  },
  { text: "Derive the quadratic formula by completing the square.", tier: "reasoning" },
  {
    text:
      "Knights always tell the truth and knaves always lie. A says 'B is a knave.' B says 'A and I are the same kind.' What are A and B?",
    tier: "reasoning"
  },
  {
    text: "Prove that Dijkstra's algorithm gives shortest paths when all edge weights are non-negative.",
    tier: "reasoning"
  },
  { text: "Solve the system: 3x + 2y = 16 and x - y = 2. Check your solution.", tier: "reasoning", acceptable: ["moderate"] },
  {
    text: "What is the expected number of rolls of a fair die until every face has appeared at least once? Derive it.",
    tier: "reasoning"
  },
  {
    text: "Reason carefully: is it possible to tile an 8x8 board with two opposite corners removed using 2x1 dominoes?",
    tier: "reasoning"
  }
]

/** The whole set, tier by tier (42 prompts each). */
export const classifierEvalSet: ReadonlyArray<EvalCase> = [...simple, ...moderate, ...complex, ...reasoning]

const tierIndex: Readonly<Record<QueryTier, number>> = { simple: 0, moderate: 1, complex: 2, reasoning: 3 }
const tierOrder: ReadonlyArray<QueryTier> = ["simple", "moderate", "complex", "reasoning"]

/** How a classifier did on the set. `confusion[label][predicted]` counts prompts. */
export interface EvalReport {
  readonly total: number
  readonly acceptable: number
  readonly exact: number
  readonly farOff: number
  readonly confusion: ReadonlyArray<ReadonlyArray<number>>
  readonly misses: ReadonlyArray<{ readonly text: string; readonly label: QueryTier; readonly predicted: QueryTier }>
}

/** Runs `classify` over the set and tallies exact, acceptable and two-or-more-tiers-off answers. */
export const evaluate = (classify: (text: string) => QueryTier, set: ReadonlyArray<EvalCase> = classifierEvalSet): EvalReport => {
  const confusion = tierOrder.map(() => tierOrder.map(() => 0))
  const misses: Array<{ text: string; label: QueryTier; predicted: QueryTier }> = []
  let acceptable = 0
  let exact = 0
  let farOff = 0
  for (const item of set) {
    const predicted = classify(item.text)
    confusion[tierIndex[item.tier]]![tierIndex[predicted]]! += 1
    if (predicted === item.tier) exact += 1
    if (predicted === item.tier || item.acceptable?.includes(predicted) === true) acceptable += 1
    else misses.push({ text: item.text, label: item.tier, predicted })
    if (Math.abs(tierIndex[predicted] - tierIndex[item.tier]) >= 2) farOff += 1
  }
  return { total: set.length, acceptable, exact, farOff, confusion, misses }
}

/** The confusion matrix and the misses as a table for a terminal. */
export const formatReport = (report: EvalReport): string => {
  const pad = (s: string) => s.padStart(10)
  const header = `${pad("label\\pred")}${tierOrder.map(pad).join("")}`
  const rows = report.confusion.map((row, i) => `${pad(tierOrder[i]!)}${row.map((n) => pad(String(n))).join("")}`)
  const pct = (n: number) => `${((100 * n) / report.total).toFixed(1)}%`
  const summary =
    `acceptable ${report.acceptable}/${report.total} (${pct(report.acceptable)}), exact ${report.exact} (${pct(report.exact)}), ` +
    `two or more tiers off ${report.farOff} (${pct(report.farOff)})`
  const misses = report.misses.map((m) => `  ${m.label} -> ${m.predicted}: ${m.text.split("\n")[0]!.slice(0, 100)}`)
  return [header, ...rows, summary, "misses:", ...misses].join("\n")
}
