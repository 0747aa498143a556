/**
 * Pure operations on the configuration document (a JSON object) addressed by key segments. The
 * document is never mutated: every edit returns a new object sharing untouched subtrees, so a
 * reader holding the old document keeps a consistent view.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as Option from "effect/Option"

/** A JSON object as stored in the configuration. @internal */
export type Document = { readonly [key: string]: unknown }

/** Whether a value is a JSON object (not an array, not null, not a class instance). @internal */
export const isJsonObject = (value: unknown): value is Document => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false
  const prototype = Object.getPrototypeOf(value)
  return prototype === Object.prototype || prototype === null
}

const describe = (value: unknown): string => {
  if (value === null) return "null"
  if (Array.isArray(value)) return "an array"
  return typeof value === "object" ? `a ${value.constructor?.name ?? "non-JSON"} object` : `a ${typeof value}`
}

/**
 * Copies a value that must be JSON, or explains which part is not: `undefined`, functions,
 * symbols, bigints, non-finite numbers, class instances and cycles are refused, so what is stored
 * is exactly what the file will hold.
 *
 * @internal
 */
export const copyJson = (value: unknown): Either.Either<unknown, string> => {
  const ancestors = new Set<object>()
  const loop = (current: unknown, at: string): unknown => {
    switch (typeof current) {
      case "string":
      case "boolean":
        return current
      case "number":
        if (Number.isFinite(current)) return current
        throw new NotJson(`${at} is ${current}, which JSON cannot hold`)
      case "object": {
        if (current === null) return null
        if (ancestors.has(current)) throw new NotJson(`${at} refers back to itself`)
        ancestors.add(current)
        try {
          if (Array.isArray(current)) return current.map((item, index) => loop(item, `${at}[${index}]`))
          if (!isJsonObject(current)) throw new NotJson(`${at} is ${describe(current)}`)
          const copy: Record<string, unknown> = {}
          for (const [key, item] of Object.entries(current)) {
            Object.defineProperty(copy, key, { value: loop(item, `${at}.${key}`), enumerable: true, writable: true, configurable: true })
          }
          return copy
        } finally {
          ancestors.delete(current)
        }
      }
      default:
        throw new NotJson(`${at} is ${describe(current)}`)
    }
  }
  try {
    return Either.right(loop(value, "the value"))
  } catch (error) {
    if (error instanceof NotJson) return Either.left(error.message)
    throw error
  }
}

class NotJson extends Error {}

/** The value at `segments`, if every step exists and is an own property. @internal */
export const getIn = (document: Document, segments: ReadonlyArray<string>): Option.Option<unknown> => {
  let current: unknown = document
  for (const segment of segments) {
    if (!isJsonObject(current) || !Object.hasOwn(current, segment)) return Option.none()
    current = current[segment]
  }
  return Option.some(current)
}

const withEntry = (object: Document, key: string, value: unknown): Document => {
  const copy: Record<string, unknown> = { ...object }
  Object.defineProperty(copy, key, { value, enumerable: true, writable: true, configurable: true })
  return copy
}

/**
 * The document with `value` at `segments`, creating missing parents; fails when a parent on the
 * way holds something other than an object (overwriting it silently would lose data).
 *
 * @internal
 */
export const setIn = (document: Document, segments: ReadonlyArray<string>, value: unknown): Either.Either<Document, string> => {
  const loop = (object: Document, index: number): Document => {
    const segment = segments[index]!
    if (index === segments.length - 1) return withEntry(object, segment, value)
    const child = Object.hasOwn(object, segment) ? object[segment] : {}
    if (!isJsonObject(child)) {
      throw new NotJson(
        `"${segments.slice(0, index + 1).join(".")}" holds ${describe(child)}, not an object; set or delete it first`
      )
    }
    return withEntry(object, segment, loop(child, index + 1))
  }
  try {
    return Either.right(loop(document, 0))
  } catch (error) {
    if (error instanceof NotJson) return Either.left(error.message)
    throw error
  }
}

/** The document without the value at `segments`, or `None` when there was nothing there. @internal */
export const deleteIn = (document: Document, segments: ReadonlyArray<string>): Option.Option<Document> => {
  const [segment, ...rest] = segments
  if (segment === undefined || !Object.hasOwn(document, segment)) return Option.none()
  if (rest.length === 0) {
    const copy: Record<string, unknown> = { ...document }
    delete copy[segment]
    return Option.some(copy)
  }
  const child = document[segment]
  if (!isJsonObject(child)) return Option.none()
  return Option.map(deleteIn(child, rest), (updated) => withEntry(document, segment, updated))
}

/** Structural equality of two JSON values. @internal */
export const jsonEqual = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, index) => jsonEqual(item, b[index]))
  }
  if (isJsonObject(a) && isJsonObject(b)) {
    const keys = Object.keys(a)
    return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && jsonEqual(a[key], b[key]))
  }
  return false
}

const leaves = (value: unknown, prefix: string, into: Map<string, unknown>): Map<string, unknown> => {
  if (isJsonObject(value) && Object.keys(value).length > 0) {
    for (const [key, item] of Object.entries(value)) leaves(item, prefix === "" ? key : `${prefix}.${key}`, into)
  } else if (prefix !== "") {
    into.set(prefix, value)
  }
  return into
}

/**
 * The per-leaf differences between two documents, removals first, then additions and updates,
 * each in key order. A leaf is a value that is not a non-empty object (arrays are leaves).
 *
 * @internal
 */
export const diffLeaves = (
  before: Document,
  after: Document
): ReadonlyArray<{ readonly key: string; readonly value: Option.Option<unknown> }> => {
  const old = leaves(before, "", new Map())
  const next = leaves(after, "", new Map())
  const removed = [...old.keys()].filter((key) => !next.has(key)).sort()
  const changed = [...next.entries()]
    .filter(([key, value]) => !old.has(key) || !jsonEqual(old.get(key), value))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return [
    ...removed.map((key) => ({ key, value: Option.none() })),
    ...changed.map(([key, value]) => ({ key, value: Option.some(value) }))
  ]
}
