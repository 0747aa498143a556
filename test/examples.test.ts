import { NodeContext } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Fs from "node:fs"
import { LanguageModel } from "../src/providers/LanguageModel.js"
import * as agent from "../scripts/examples/agent.js"
import * as config from "../scripts/examples/config.js"
import * as provider from "../scripts/examples/provider.js"
import * as router from "../scripts/examples/router.js"
import * as secrets from "../scripts/examples/secrets.js"
import * as tools from "../scripts/examples/tools.js"
import * as OpenAiServer from "./peers/OpenAiServer.js"

describe("README examples", () => {
  it("README shows each example exactly as the file that these tests run", () => {
    const readme = Fs.readFileSync(new URL("../README.md", import.meta.url), "utf8")
    const blocks = [...readme.matchAll(/<!-- example: (\S+) -->\s*```ts\n([\s\S]*?)```/g)]
    expect(blocks.map((block) => block[1]).sort()).toEqual([
      "scripts/examples/agent.ts",
      "scripts/examples/config.ts",
      "scripts/examples/provider.ts",
      "scripts/examples/router.ts",
      "scripts/examples/secrets.ts",
      "scripts/examples/tools.ts"
    ])
    for (const [, file, code] of blocks) {
      expect(code, file).toBe(Fs.readFileSync(new URL(`../${file}`, import.meta.url), "utf8"))
    }
  })

  it.scoped("secrets: stores a key encrypted and resolves it as the provider key", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped()
      const value = yield* secrets.program(`${dir}/secrets.enc`)
      expect(value).toBe("sk-example")
      expect(new TextDecoder().decode(yield* fs.readFile(`${dir}/secrets.enc`))).not.toContain("sk-example")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("config: sets a typed key, reads a default, rejects a wrong value, publishes the change", () =>
    Effect.gen(function*() {
      const result = yield* config.program
      expect([...result.changes].map((change) => change.key)).toEqual(["routing.tierMapping.complex"])
      expect(result.rejected.reason).toBe("InvalidValue")
    }))

  it.effect("tools: a valid call completes and an invalid one ends in a tool-error event", () =>
    Effect.gen(function*() {
      const events = yield* tools.program
      const byCall = (id: string) => events.filter((event) => event.toolCallId === id).map((event) => event.type)
      expect(byCall("call-1")).toEqual(["tool-start", "tool-progress", "tool-complete"])
      expect(byCall("call-2").at(-1)).toBe("tool-error")
    }))

  it.effect("agent: the scripted model calls the tool and answers", () =>
    Effect.gen(function*() {
      const last = yield* agent.program
      expect(last._tag === "Some" && last.value).toMatchObject({
        type: "task-complete",
        content: "It is sunny and 21 °C in Lisbon."
      })
    }))

  it.live("provider: streams a completion from an OpenAI-compatible server", () =>
    Effect.gen(function*() {
      const server = yield* OpenAiServer.start({
        script: [OpenAiServer.sse(OpenAiServer.textChunks(["Hel", "lo!"]))]
      })
      expect(yield* provider.program(server.url)).toBe("Hello!")
    }).pipe(Effect.scoped))

  it.scoped("router: the production layers build over files in the user's config directory", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const home = yield* fs.makeTempDirectoryScoped()
      const model = yield* Layer.build(router.ModelLive).pipe(
        Effect.map((context) => context.unsafeMap.get(LanguageModel.key) as LanguageModel["Type"]),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["XDG_CONFIG_HOME", home]])))
      )
      expect(model.id).toBe("tier-router")
    }).pipe(Effect.provide(NodeContext.layer)))
})
