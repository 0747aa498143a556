/** scripts/migrate-store.ts, run as a user runs it: JSON conversation files into a SQLite database. */
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import * as ConversationStore from "../../src/agent/ConversationStore.js"
import * as Storage from "../../src/storage/Storage.js"

const root = fileURLToPath(new URL("../..", import.meta.url))

const migrate = (args: ReadonlyArray<string>, home: string) =>
  Effect.async<{ readonly code: number; readonly stdout: string; readonly stderr: string }>((resume) => {
    execFile(process.execPath, ["--import", "tsx", "scripts/migrate-store.ts", ...args], {
      cwd: root,
      env: { PATH: process.env.PATH ?? "", HOME: home, XDG_CONFIG_HOME: `${home}/config`, XDG_DATA_HOME: `${home}/data` },
      timeout: 60_000
    }, (error, stdout, stderr) => resume(Effect.succeed({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr })))
  })

const pending: ConversationStore.PendingStep = {
  taskId: "task-1",
  step: 1,
  toolCalls: [{ id: "call-1", name: "confirm", arguments: {} }],
  waiting: ["call-1"],
  results: {},
  usage: {},
  maxSteps: 10
}

describe("scripts/migrate-store.ts", () => {
  it.scoped("imports every JSON conversation into the database, and a second run leaves them as they are", () =>
    Effect.gen(function*() {
      const home = yield* (yield* FileSystem.FileSystem).makeTempDirectoryScoped()
      const directory = `${home}/conversations`
      const files = yield* ConversationStore.makeFile({ directory })
      yield* files.save("first", { messages: [{ role: "user", content: "Hi" }, { role: "assistant", content: "Hello" }] })
      yield* files.save("second/with:odd id", { messages: [{ role: "user", content: "Proceed?" }], pending })
      const url = `sqlite:${home}/kernel.db`
      const first = yield* migrate([directory, "--url", url], home)
      expect(first.stdout).toContain("2 imported, 0 already there")
      expect(first.code).toBe(0)
      const again = yield* migrate([directory, "--url", url], home)
      expect(again.stdout).toContain("0 imported, 2 already there")
      const store = yield* Effect.provideService(ConversationStore.makeSql, Storage.Storage, yield* Storage.make({ url }))
      expect(yield* store.load("first")).toEqual(yield* files.load("first"))
      expect(yield* store.load("second/with:odd id")).toEqual(Option.some({ messages: [{ role: "user", content: "Proceed?" }], pending }))
    }).pipe(Effect.provide(NodeContext.layer)), { timeout: 120_000 })

  it.scoped("a directory it cannot read is reported, with status 1", () =>
    Effect.gen(function*() {
      const home = yield* (yield* FileSystem.FileSystem).makeTempDirectoryScoped()
      const result = yield* migrate([`${home}/missing`, "--url", `sqlite:${home}/kernel.db`], home)
      expect(result.code).toBe(1)
      expect(result.stderr).toContain(`cannot read the directory ${home}/missing`)
    }).pipe(Effect.provide(NodeContext.layer)), { timeout: 120_000 })
})
