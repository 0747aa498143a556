/**
 * Pairs a model provider without a model: runs the provider plugin's own `<id>_pair` (or
 * `<id>_unpair`) tool through a `Toolbox`, against the configuration file and the encrypted
 * secrets file, then prints what changed — never the key.
 *
 *   OPENAI_API_KEY=sk-… npx tsx scripts/pair.ts openai            key from the environment
 *   npx tsx scripts/pair.ts openai --model gpt-4.1                 key typed at a hidden prompt
 *   pass show openai | npx tsx scripts/pair.ts openai              key piped on standard input
 *   npx tsx scripts/pair.ts litellm --base-url http://127.0.0.1:4000 --no-key
 *   npx tsx scripts/pair.ts bedrock --region eu-west-1 --no-key    the AWS default credential chain
 *   npx tsx scripts/pair.ts openai --unpair --delete-key
 *
 * The key is never taken from the command line, where shell history and `ps` would keep it:
 * `--key` and friends are refused, and so is any extra argument.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Chunk from "effect/Chunk"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { pathToFileURL } from "node:url"
import { parseArgs } from "node:util"
import * as ConfigManager from "../src/config/ConfigManager.js"
import * as ExecutionContext from "../src/domain/ExecutionContext.js"
import { builtins, operatorPairingTools } from "../src/plugins/builtin.js"
import * as SecretsManager from "../src/secrets/SecretsManager.js"
import * as Toolbox from "../src/tools/Toolbox.js"

const providerIds = builtins.map((plugin) => plugin.id)

/** Where each provider's credentials come from in the environment. */
const keyVariables = (provider: string): ReadonlyArray<string> =>
  provider === "bedrock" ? ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] : [SecretsManager.providerEnvVar(provider)]

export const usage = `Usage: npx tsx scripts/pair.ts <provider> [options]
  Pairs a model provider: stores its key in the encrypted secrets file, sets its model and base
  URL, enables it and routes its tiers to it. Takes effect on the next request, no restart.
  <provider>      ${providerIds.join(", ")}

  The key comes from the environment (${providerIds.filter((id) => id !== "bedrock").map((id) => keyVariables(id)[0]).join(", ")};
  for bedrock AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), else a hidden prompt when standard
  input is a terminal, else the first line(s) piped on standard input. Never the command line.

  --model <name>      the model to use
  --base-url <url>    the API's base URL (proxies, self-hosted servers, LiteLLM)
  --region <region>   the AWS region (bedrock only)
  --no-key            pair without a key (litellm, ollama; bedrock then uses the AWS default chain)
  --unpair            disconnect the provider instead: its tiers go back to the default provider
  --delete-key        with --unpair, also delete its stored credentials
  --config <path>     the configuration file (default $XDG_CONFIG_HOME/effect-agent-kernel/config.json)
  --secrets <path>    the encrypted secrets file (default $XDG_CONFIG_HOME/effect-agent-kernel/secrets.enc)`

/** What the command line asks for. */
export interface PairOptions {
  readonly provider: string
  readonly unpair: boolean
  readonly deleteKey: boolean
  readonly noKey: boolean
  readonly model?: string
  readonly baseUrl?: string
  readonly region?: string
  readonly configPath?: string
  readonly secretsPath?: string
}

/** The command line could not be used: `message` says why (and never repeats a value). */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

/** The run failed; what went wrong has been said in `message`. */
class PairFailed extends Data.TaggedError("PairFailed")<{ readonly message: string }> {}

const credentialFlag = /^--?(key|api-?key|token|secret|password|access-?key(-?id)?|secret-?access-?key)(=|$)/i

/**
 * Parses the arguments after the script's name. Pure: no environment, no I/O. Refuses any
 * option that would carry a credential and any extra argument, without quoting either (it may
 * be a key pasted in the wrong place).
 */
export const parseArguments = (args: ReadonlyArray<string>): PairOptions | UsageError | "help" => {
  const leaked = args.find((arg) => credentialFlag.test(arg))
  if (leaked !== undefined) {
    return new UsageError({
      message: `${leaked.split("=")[0]} is refused: a key on the command line ends up in shell history and process ` +
        `listings. Set the environment variable instead, pipe the key on standard input, or type it at the prompt.`
    })
  }
  let parsed
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        model: { type: "string" },
        "base-url": { type: "string" },
        region: { type: "string" },
        "no-key": { type: "boolean" },
        unpair: { type: "boolean" },
        "delete-key": { type: "boolean" },
        config: { type: "string" },
        secrets: { type: "string" },
        help: { type: "boolean", short: "h" }
      }
    })
  } catch (error) {
    const code = (error as { readonly code?: string }).code
    return new UsageError({
      message: code === "ERR_PARSE_ARGS_UNKNOWN_OPTION"
        ? `Unknown option. See --help for the options.`
        : code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE"
        ? `An option is missing its value or takes none. See --help.`
        : `The arguments could not be read. See --help.`
    })
  }
  const { positionals, values } = parsed
  if (values.help === true) return "help"
  if (positionals.length === 0) return new UsageError({ message: `Name the provider to pair: ${providerIds.join(", ")}.` })
  if (positionals.length > 1) {
    return new UsageError({
      message: `Only one argument, the provider, is taken (got ${positionals.length}; the others are not shown in ` +
        `case one is a key). The key is never passed on the command line.`
    })
  }
  const provider = positionals[0]!.toLowerCase()
  if (!providerIds.includes(provider)) {
    return new UsageError({ message: `Unknown provider "${positionals[0]}". Known: ${providerIds.join(", ")}.` })
  }
  const unpair = values.unpair === true
  if (values["delete-key"] === true && !unpair) return new UsageError({ message: "--delete-key only goes with --unpair." })
  if (unpair && (values.model !== undefined || values["base-url"] !== undefined || values.region !== undefined)) {
    return new UsageError({ message: "--unpair takes no --model, --base-url or --region." })
  }
  if (values.region !== undefined && provider !== "bedrock") {
    return new UsageError({ message: "--region is for bedrock only." })
  }
  if (values["no-key"] === true && provider === "openai") {
    return new UsageError({ message: "OpenAI cannot work without a key; --no-key is refused for openai." })
  }
  return {
    provider,
    unpair,
    deleteKey: values["delete-key"] === true,
    noKey: values["no-key"] === true,
    ...(values.model !== undefined ? { model: values.model } : {}),
    ...(values["base-url"] !== undefined ? { baseUrl: values["base-url"] } : {}),
    ...(values.region !== undefined ? { region: values.region } : {}),
    ...(values.config !== undefined ? { configPath: values.config } : {}),
    ...(values.secrets !== undefined ? { secretsPath: values.secrets } : {})
  }
}

// ---------------------------------------------------------------- reading the key

/** Reads one line from the terminal in raw mode, echoing nothing. Ctrl-C cancels. */
const readHidden = (prompt: string): Effect.Effect<string, PairFailed> =>
  Effect.async<string, PairFailed>((resume) => {
    const stdin = process.stdin
    let value = ""
    const cleanup = () => {
      stdin.off("data", onData)
      stdin.setRawMode(false)
      stdin.pause()
    }
    const finish = (result: Effect.Effect<string, PairFailed>) => {
      cleanup()
      process.stderr.write("\n")
      resume(result)
    }
    const onData = (text: string) => {
      for (const char of text) {
        if (char === "\r" || char === "\n") return finish(Effect.succeed(value))
        if (char === "\u0003") return finish(Effect.fail(new PairFailed({ message: "Cancelled; nothing was changed." })))
        if (char === "\u0004") return finish(Effect.succeed(value))
        if (char === "\u007f" || char === "\b") value = value.slice(0, -1)
        else if (char === "\u0015") value = ""
        else if (char === "\u001b") return // an escape sequence (arrow keys): ignore the rest of it
        else if (char >= " ") value += char
      }
    }
    process.stderr.write(prompt)
    stdin.setEncoding("utf8")
    stdin.setRawMode(true)
    stdin.resume()
    stdin.on("data", onData)
    return Effect.sync(cleanup)
  })

/** Reads piped standard input to its end (bounded, so a forgotten open pipe does not hang). */
const readPiped = (what: string): Effect.Effect<ReadonlyArray<string>, PairFailed> =>
  Effect.async<string, PairFailed>((resume) => {
    const stdin = process.stdin
    let data = ""
    const onData = (piece: string) => {
      data += piece
    }
    const onEnd = () => resume(Effect.succeed(data))
    const onError = (error: Error) =>
      resume(Effect.fail(new PairFailed({ message: `Standard input could not be read: ${error.message}` })))
    stdin.setEncoding("utf8")
    stdin.on("data", onData)
    stdin.once("end", onEnd)
    stdin.once("error", onError)
    return Effect.sync(() => {
      stdin.off("data", onData)
      stdin.off("end", onEnd)
      stdin.off("error", onError)
      stdin.pause()
    })
  }).pipe(
    Effect.timeoutFail({
      duration: "30 seconds",
      onTimeout: () =>
        new PairFailed({ message: `No ${what} arrived on standard input within 30 seconds, and it was not closed.` })
    }),
    Effect.map((text) => text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== ""))
  )

const fromEnvironment = (name: string): string | undefined => {
  const value = process.env[name]?.trim()
  return value === undefined || value === "" ? undefined : value
}

/** The tool arguments carrying the credentials, read from the environment, the terminal or a pipe. */
const readCredentials = (options: PairOptions): Effect.Effect<Record<string, string>, PairFailed> =>
  Effect.gen(function*() {
    if (options.noKey) return {}
    const variables = keyVariables(options.provider)
    const fields = options.provider === "bedrock" ? ["accessKeyId", "secretAccessKey"] : ["apiKey"]
    const required = options.provider === "openai"
    const fromEnv = variables.map(fromEnvironment)
    if (fromEnv.every((value) => value !== undefined)) {
      yield* Console.log(`Using the key from ${variables.join(" and ")}.`)
      return Object.fromEntries(fields.map((field, index) => [field, fromEnv[index]!]))
    }
    const optional = required ? "" : " (empty for none)"
    let values: ReadonlyArray<string>
    if (process.stdin.isTTY) {
      const first = yield* readHidden(
        options.provider === "bedrock"
          ? `AWS access key id (empty for the default credential chain): `
          : `${variables[0]} is not set. Type the ${options.provider} API key${optional}, not shown: `
      )
      values = first.trim() === "" || fields.length === 1
        ? [first.trim()]
        : [first.trim(), (yield* readHidden("AWS secret access key, not shown: ")).trim()]
    } else {
      values = yield* readPiped(options.provider === "bedrock" ? "credentials" : "key")
    }
    if (values.length === 0 || values[0] === "") {
      if (required) {
        return yield* new PairFailed({
          message: `No key given. Set ${variables[0]}, pipe the key on standard input, or type it at the prompt.`
        })
      }
      return {}
    }
    if (values.length < fields.length || values.length > fields.length) {
      return yield* new PairFailed({
        message: options.provider === "bedrock"
          ? "Give the AWS access key id and the secret access key, one per line (or neither, with --no-key)."
          : "Standard input held more than one line; pipe only the key."
      })
    }
    return Object.fromEntries(fields.map((field, index) => [field, values[index]!]))
  })

// ---------------------------------------------------------------- pairing

/** Every leaf of a JSON document as `dotted.key → value`. */
const leaves = (value: unknown, prefix = "", out = new Map<string, string>()): Map<string, string> => {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value)) leaves(inner, prefix === "" ? key : `${prefix}.${key}`, out)
  } else if (prefix !== "") {
    out.set(prefix, JSON.stringify(value))
  }
  return out
}

const context = ExecutionContext.make({ contextId: "pair-script", taskId: "pair", agentId: "scripts/pair.ts" })

const run = (options: PairOptions) =>
  Effect.gen(function*() {
    const config = yield* ConfigManager.ConfigManager
    const secrets = yield* SecretsManager.SecretsManager
    // The operator's tools: this script's user is at the terminal, so they may set the base URL
    // and replace or delete stored credentials, which the tools offered to a model may not.
    const tools = Option.getOrThrow(operatorPairingTools(options.provider, secrets, config))
    const toolbox = yield* Toolbox.make([tools]).pipe(
      Effect.mapError((error) => new PairFailed({ message: error.message }))
    )
    const toolName = `${options.provider}_${options.unpair ? "unpair" : "pair"}`
    const args: Record<string, unknown> = options.unpair
      ? { deleteKey: options.deleteKey }
      : {
        ...(yield* readCredentials(options)),
        ...(options.model !== undefined ? { model: options.model } : {}),
        ...(options.baseUrl !== undefined ? { baseUrl: options.baseUrl } : {}),
        ...(options.region !== undefined ? { region: options.region } : {})
      }
    const configBefore = leaves(yield* config.snapshot)
    const secretsBefore = new Set(yield* Effect.orElseSucceed(secrets.list(`provider.${options.provider}.*`), () => []))

    const events = Chunk.toArray(yield* Stream.runCollect(toolbox.execute({ id: "pair-1", name: toolName, arguments: args }, context)))
    const last = events[events.length - 1]
    if (last?.type !== "tool-complete") {
      const reason = last?.type === "tool-error" ? last.error : "the tool gave no answer"
      return yield* new PairFailed({ message: reason })
    }

    yield* Console.log(String(last.result))
    const configAfter = leaves(yield* config.snapshot)
    for (const [key, value] of configAfter) {
      if (configBefore.get(key) !== value) yield* Console.log(`  config  ${key} = ${value}`)
    }
    for (const key of configBefore.keys()) if (!configAfter.has(key)) yield* Console.log(`  config  ${key} removed`)
    const secretsAfter = new Set(yield* Effect.orElseSucceed(secrets.list(`provider.${options.provider}.*`), () => []))
    const given = Object.keys(args).filter((field) => field === "apiKey" || field === "accessKeyId" || field === "secretAccessKey")
    if (given.length > 0) {
      for (const key of secretsAfter) yield* Console.log(`  secret  ${key} ${secretsBefore.has(key) ? "replaced" : "stored"}`)
    }
    for (const key of secretsBefore) if (!secretsAfter.has(key)) yield* Console.log(`  secret  ${key} deleted`)
  })

const layers = (options: PairOptions) =>
  Layer.merge(
    ConfigManager.layerFile({ watch: false, ...(options.configPath !== undefined ? { path: options.configPath } : {}) }),
    options.secretsPath !== undefined ? SecretsManager.layerFile({ path: options.secretsPath }) : SecretsManager.layer
  ).pipe(Layer.provide(NodeContext.layer))

const main = Effect.gen(function*() {
  const parsed = parseArguments(process.argv.slice(2))
  if (parsed === "help") return yield* Console.log(usage)
  if (parsed instanceof UsageError) {
    yield* Console.error(`✗ ${parsed.message}\n\n${usage}`)
    return yield* new PairFailed({ message: parsed.message })
  }
  yield* run(parsed).pipe(
    Effect.provide(layers(parsed)),
    Effect.catchTags({
      ConfigError: (error) => new PairFailed({ message: error.message }),
      SecretsError: (error) => new PairFailed({ message: error.message })
    }),
    Effect.tapError((error) => Console.error(`✗ ${error.message}`))
  )
})

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  NodeRuntime.runMain(main, { disableErrorReporting: true })
}
