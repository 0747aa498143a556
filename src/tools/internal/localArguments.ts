/**
 * A local tool's parameters: the JSON Schema the model is shown, made from the tool's Effect
 * Schema, and the account of arguments that do not decode, which tells the model what to fix.
 *
 * @internal
 */
import * as JSONSchema from "effect/JSONSchema"
import * as ParseResult from "effect/ParseResult"
import type * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import type { ToolCall } from "../../domain/Message.js"

/**
 * The JSON Schema of a tool's parameters, without the `$schema` key that some providers reject.
 * Throws for a schema that is not an object: a programming error, reported when the tool is made.
 */
export const parametersJsonSchema = (name: string, schema: Schema.Schema.Any): Record<string, unknown> => {
  const encoded = SchemaAST.encodedAST(schema.ast)
  // `JSONSchema` renders an empty struct as "object or array"; a tool without parameters wants an empty object.
  if (SchemaAST.isTypeLiteral(encoded) && encoded.propertySignatures.length === 0 && encoded.indexSignatures.length === 0) {
    return { type: "object", properties: {}, required: [], additionalProperties: false }
  }
  const definitions: Record<string, JSONSchema.JsonSchema7> = {}
  // "skip" inlines a top-level `$ref` (a Schema.Class), because model APIs want `type: "object"` at the root.
  const root = JSONSchema.fromAST(schema.ast, { definitions, topLevelReferenceStrategy: "skip" })
  if (!("type" in root) || root.type !== "object") {
    throw new Error(
      `tool(): the parameters of tool "${name}" must be an object schema (Schema.Struct or Schema.Class), got ${
        JSON.stringify(root).slice(0, 120)
      }.`
    )
  }
  return Object.keys(definitions).length === 0 ? { ...root } : { ...root, $defs: definitions }
}

/** Issues found while decoding: a marker the handler's failure mapping recognises. */
export class InvalidArgumentsFailure {
  constructor(readonly message: string, readonly issues: ReadonlyArray<{ path: string; message: string }>) {}
}

export const invalidArguments = (call: ToolCall, error: ParseResult.ParseError): InvalidArgumentsFailure => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => ({
    path: formatPath(issue.path),
    message: issue.message
  }))
  const listed = issues.map((issue) => `${issue.path}: ${issue.message}`).join("; ")
  return new InvalidArgumentsFailure(
    `Invalid arguments for tool "${call.name}": ${listed}. Correct the arguments to match the tool's parameters and call it again.`,
    issues
  )
}

const formatPath = (path: ReadonlyArray<PropertyKey>): string => {
  if (path.length === 0) return "(arguments)"
  let out = ""
  for (const key of path) out += typeof key === "number" ? `[${key}]` : out === "" ? String(key) : `.${String(key)}`
  return out
}
