/**
 * An Effect `ConfigProvider` that reads the configuration document live: every load looks at the
 * current document, so a `Config` read after a change sees the new value. A dot in a config name
 * is a path separator, so `Config.string("providers.openai.model")` and
 * `Config.nested(Config.string("model"), "providers.openai")` address the same value; arrays are
 * read element by element (`Config.array`, or `name[0]`).
 *
 * @internal
 */
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as PathPatch from "effect/ConfigProviderPathPatch"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as HashSet from "effect/HashSet"
import { isJsonObject } from "./document.js"

const indexed = /^(.*)\[(\d+)\]$/

const normalize = (path: ReadonlyArray<string>): ReadonlyArray<string> =>
  path.flatMap((component) =>
    component.split(".").flatMap((segment) => {
      const match = indexed.exec(segment)
      return match === null ? [segment] : match[1] === "" ? [`[${match[2]}]`] : [match[1]!, `[${match[2]}]`]
    })
  )

const resolve = (root: unknown, segments: ReadonlyArray<string>): unknown => {
  let current = root
  for (const segment of segments) {
    const index = /^\[(\d+)\]$/.exec(segment)
    if (index !== null && Array.isArray(current)) {
      current = current[Number(index[1])]
    } else if (isJsonObject(current) && Object.hasOwn(current, segment)) {
      current = current[segment]
    } else {
      return undefined
    }
  }
  return current
}

const isScalar = (value: unknown): value is string | number | boolean =>
  typeof value === "string" || typeof value === "number" || typeof value === "boolean"

/** A live `ConfigProvider` over the document `current` returns (defaults included). @internal */
export const make = (current: Effect.Effect<unknown>): ConfigProvider.ConfigProvider =>
  ConfigProvider.fromFlat(
    ConfigProvider.makeFlat({
      load: (path, primitive, split) =>
        Effect.flatMap(current, (document) => {
          const name = normalize(path).join(".")
          const value = resolve(document, normalize(path))
          const parse = (scalar: string | number | boolean) =>
            Either.mapLeft(primitive.parse(String(scalar)), ConfigError.prefixed([...path]))
          if (value === undefined || value === null) {
            return Effect.fail(ConfigError.MissingData([...path], `Expected ${name} to exist in the configuration`))
          }
          if (isScalar(value)) return Effect.map(parse(value), (parsed) => [parsed])
          if (split && Array.isArray(value) && value.every(isScalar)) return Effect.forEach(value, parse)
          return Effect.fail(
            ConfigError.InvalidData(
              [...path],
              `Expected ${name} to be a single value, but it holds ${Array.isArray(value) ? "an array" : "an object"}`
            )
          )
        }),
      enumerateChildren: (path) =>
        Effect.map(current, (document) => {
          const value = resolve(document, normalize(path))
          if (Array.isArray(value)) return HashSet.fromIterable(value.map((_, index) => `[${index}]`))
          if (isJsonObject(value)) return HashSet.fromIterable(Object.keys(value))
          return HashSet.empty<string>()
        }),
      patch: PathPatch.empty
    })
  )
