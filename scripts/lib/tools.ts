/**
 * The local tools the scripts offer: `current_time` and `calculator`. The calculator evaluates
 * arithmetic with its own small parser — never `eval` — so a model cannot run code through it.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { tool } from "../../src/tools/LocalTools.js"

/** The current date and time, in UTC and in a time zone the model may name. */
export const currentTime = tool({
  name: "current_time",
  description: "Returns the current date and time (ISO 8601 in UTC, and in the given IANA time zone if any).",
  parameters: Schema.Struct({
    timeZone: Schema.optional(Schema.String.annotations({ description: "An IANA time zone such as Europe/Paris" }))
  }),
  handler: ({ timeZone }) =>
    Effect.try({
      try: () => {
        const now = new Date()
        return {
          utc: now.toISOString(),
          ...(timeZone !== undefined
            ? { local: now.toLocaleString("en-GB", { timeZone, dateStyle: "medium", timeStyle: "long" }), timeZone }
            : {})
        }
      },
      catch: () => `Unknown time zone "${timeZone}"; use an IANA name such as Europe/Paris.`
    })
})

/** Arithmetic on numbers: `+ - * / % ^`, parentheses and unary minus. */
export const calculator = tool({
  name: "calculator",
  description: "Evaluates an arithmetic expression with + - * / % ^ and parentheses, e.g. \"(17 + 25) * 2\".",
  parameters: Schema.Struct({
    expression: Schema.String.annotations({ description: "The expression to evaluate" })
  }),
  handler: ({ expression }) =>
    Effect.try({
      try: () => ({ expression, value: evaluate(expression) }),
      catch: (error) => error instanceof Error ? error.message : String(error)
    })
})

/** Evaluates an arithmetic expression; throws an `Error` saying what is wrong with it. */
export const evaluate = (expression: string): number => {
  const tokens = expression.match(/\d+(?:\.\d+)?(?:e[+-]?\d+)?|[-+*/%^()]|\S/gi) ?? []
  let position = 0
  const peek = () => tokens[position]
  const fail = (problem: string): never => {
    throw new Error(`Cannot evaluate "${expression}": ${problem}.`)
  }
  const expect = (token: string) => {
    if (tokens[position] !== token) fail(`expected "${token}" at token ${position + 1}`)
    position++
  }
  // sum := product (("+" | "-") product)*
  const sum = (): number => {
    let value = product()
    while (peek() === "+" || peek() === "-") value = tokens[position++] === "+" ? value + product() : value - product()
    return value
  }
  // product := power (("*" | "/" | "%") power)*
  const product = (): number => {
    let value = power()
    while (peek() === "*" || peek() === "/" || peek() === "%") {
      const operator = tokens[position++]
      const right = power()
      if (operator !== "*" && right === 0) fail("division by zero")
      value = operator === "*" ? value * right : operator === "/" ? value / right : value % right
    }
    return value
  }
  // power := unary ("^" power)?   (right-associative)
  const power = (): number => {
    const base = unary()
    if (peek() !== "^") return base
    position++
    return base ** power()
  }
  const unary = (): number => {
    if (peek() === "-") {
      position++
      return -unary()
    }
    if (peek() === "+") {
      position++
      return unary()
    }
    return atom()
  }
  const atom = (): number => {
    const token = peek()
    if (token === undefined) return fail("it ends too early")
    if (token === "(") {
      position++
      const value = sum()
      expect(")")
      return value
    }
    if (!/^\d/.test(token)) return fail(`unexpected "${token}"`)
    position++
    return Number(token)
  }
  if (tokens.length === 0) fail("it is empty")
  const value = sum()
  if (position < tokens.length) fail(`unexpected "${tokens[position]}"`)
  if (!Number.isFinite(value)) fail("the result is not a finite number")
  return value
}
