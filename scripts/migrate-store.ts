/**
 * Imports the conversations of a JSON file store (`ConversationStore.makeFile`: one
 * `<hex of the contextId>.json` per conversation) into the database behind `Storage`.
 *
 *   npx tsx scripts/migrate-store.ts <directory>                   into the configured storage
 *   npx tsx scripts/migrate-store.ts <directory> --url sqlite:/path/kernel.db
 *
 * Without `--url` the database is the configuration's `storage.url` (the default SQLite file when
 * unset; PostgreSQL's password from the secrets store, key `storage.postgres.password`).
 * A conversation already in the database is left as it is unless `--replace` is given; the JSON
 * files are never changed. Prints what it imported, skipped and could not read; exits 1 when a
 * file could not be imported.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { readdirSync } from "node:fs"
import { parseArgs } from "node:util"
import * as ConversationStore from "../src/agent/ConversationStore.js"
import * as ConfigManager from "../src/config/ConfigManager.js"
import * as SecretsManager from "../src/secrets/SecretsManager.js"
import * as Storage from "../src/storage/Storage.js"

const usage = `Usage: npx tsx scripts/migrate-store.ts <directory> [--url <storage url>] [--replace] [--config <path>] [--secrets <path>]
  Imports the JSON conversation files in <directory> into the database.
  --url      sqlite:<path> or postgres://user@host:port/database (default: the configuration's storage.url)
  --replace  overwrite conversations the database already holds (default: leave them)`

/** The contextIds of the conversation files in `directory` (their names are the ids' hex). */
const contextIdsIn = (directory: string): ReadonlyArray<string> =>
  readdirSync(directory)
    .filter((name) => /^([0-9a-f]{2})+\.json$/.test(name))
    .map((name) => Buffer.from(name.slice(0, -".json".length), "hex").toString("utf8"))

const storageLayer = (values: { url?: string | undefined; config?: string | undefined; secrets?: string | undefined }) => {
  if (values.url !== undefined && !values.url.startsWith("postgres")) return Storage.layer({ url: values.url })
  const files = Layer.mergeAll(
    ConfigManager.layerFile(values.config !== undefined ? { path: values.config } : {}),
    values.secrets !== undefined ? SecretsManager.layerFile({ path: values.secrets }) : SecretsManager.layer
  ).pipe(Layer.provide(NodeContext.layer))
  if (values.url === undefined) return Storage.layerConfig().pipe(Layer.provide(files))
  const url = values.url
  return Layer.unwrapEffect(Effect.gen(function*() {
    const password = yield* (yield* SecretsManager.SecretsManager).retrieve(Storage.passwordKey)
    return Storage.layer({ url, password: Option.getOrUndefined(password) })
  })).pipe(Layer.provide(files))
}

const main = Effect.gen(function*() {
  let parsed
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: { url: { type: "string" }, replace: { type: "boolean" }, config: { type: "string" }, secrets: { type: "string" } }
    })
  } catch (error) {
    yield* Console.error(`${error instanceof Error ? error.message : String(error)}\n${usage}`)
    return yield* Effect.fail("usage" as const)
  }
  const directory = parsed.positionals[0]
  if (directory === undefined || parsed.positionals.length > 1) {
    yield* Console.error(usage)
    return yield* Effect.fail("usage" as const)
  }
  const program = Effect.gen(function*() {
    const files = yield* ConversationStore.makeFile({ directory })
    const database = yield* ConversationStore.makeSql
    const storage = yield* Storage.Storage
    const counts = { imported: 0, skipped: 0, failed: 0 }
    const contextIds = yield* Effect.try({
      try: () => contextIdsIn(directory),
      catch: (error) => `cannot read the directory ${directory}: ${error instanceof Error ? error.message : String(error)}`
    }).pipe(Effect.tapError((message) => Console.error(`✗ ${message}`)), Effect.mapError(() => "failed" as const))
    for (const contextId of contextIds) {
      const outcome = yield* Effect.gen(function*() {
        const conversation = yield* files.load(contextId)
        if (Option.isNone(conversation)) return "skipped" as const
        if (parsed.values.replace !== true && Option.isSome(yield* database.load(contextId))) return "skipped" as const
        yield* database.save(contextId, conversation.value)
        return "imported" as const
      }).pipe(Effect.catchAll((error) => Effect.as(Console.error(`✗ ${contextId}: ${error.message}`), "failed" as const)))
      counts[outcome]++
    }
    yield* Console.log(
      `${counts.imported} imported, ${counts.skipped} already there (left as they were), ${counts.failed} failed — into ${storage.database}`
    )
    if (counts.failed > 0) return yield* Effect.fail("failed" as const)
  })
  return yield* program.pipe(
    Effect.provide(Layer.merge(storageLayer(parsed.values), NodeContext.layer)),
    Effect.catchTags({
      StorageError: (error) => Effect.zipRight(Console.error(`✗ ${error.message}`), Effect.fail("failed" as const)),
      ConfigError: (error) => Effect.zipRight(Console.error(`✗ ${error.message}`), Effect.fail("failed" as const)),
      SecretsError: (error) => Effect.zipRight(Console.error(`✗ ${error.message}`), Effect.fail("failed" as const))
    })
  )
})

NodeRuntime.runMain(main, { disableErrorReporting: true })
