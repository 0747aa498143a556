import { NodeContext } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Console from "effect/Console"
import * as Layer from "effect/Layer"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import { LanguageModel } from "../src/providers/LanguageModel.js"
import * as agent from "../scripts/examples/agent.js"
import * as clientTool from "../scripts/examples/clientTool.js"
import * as config from "../scripts/examples/config.js"
import * as conversation from "../scripts/examples/conversation.js"
import * as provider from "../scripts/examples/provider.js"
import * as router from "../scripts/examples/router.js"
import * as secrets from "../scripts/examples/secrets.js"
import * as tools from "../scripts/examples/tools.js"
import * as OpenAiServer from "./peers/OpenAiServer.js"

/** Runs `effect` with what it prints through `Console.log` collected. */
const printed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const console = yield* Console.consoleWith((real) =>
      Effect.succeed({ ...real, log: (...args: ReadonlyArray<unknown>) => Effect.sync(() => void lines.push(args.join(" "))) })
    )
    const result = yield* Effect.withConsole(effect, console)
    return { result, lines }
  })

/**
 * Runs an example file as a user does (`tsx <file>`, the package read from `src/`), with
 * `unset` removed from the environment; its exit code and output.
 */
const runScript = (file: string, unset: ReadonlyArray<string> = []) =>
  Effect.async<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }>((resume) => {
    const env = { ...process.env }
    for (const name of unset) delete env[name]
    const child = ChildProcess.execFile(
      process.execPath,
      ["--import", "tsx", "--conditions", "effect-agent-kernel-source", file],
      { cwd: new URL("..", import.meta.url), env, timeout: 60_000 },
      (error, stdout, stderr) => resume(Effect.succeed({ code: error === null ? 0 : (error.code as number | null) ?? 1, stdout, stderr }))
    )
    return Effect.sync(() => void child.kill())
  })

describe("README examples", () => {
  it("README shows each example exactly as the file that these tests run", () => {
    const readme = Fs.readFileSync(new URL("../README.md", import.meta.url), "utf8")
    const blocks = [...readme.matchAll(/<!-- example: (\S+) -->\s*```ts\n([\s\S]*?)```/g)]
    expect(blocks.map((block) => block[1]).sort()).toEqual([
      "scripts/examples/agent.ts",
      "scripts/examples/clientTool.ts",
      "scripts/examples/config.ts",
      "scripts/examples/conversation.ts",
      "scripts/examples/provider.ts",
      "scripts/examples/router.ts",
      "scripts/examples/routing.ts",
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

  it.effect("config: prints the values themselves, not Option wrappers", () =>
    Effect.gen(function*() {
      const { lines } = yield* printed(config.program)
      expect(lines[0]).toBe("complex → openai, simple → ollama")
    }))

  it.scoped("conversation: the second turn's request carries the first turn, and the store keeps both", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped()
      const { result: history, lines } = yield* printed(conversation.program(directory))
      expect(history.map((message) => [message.role, message.content])).toEqual([
        ["user", "Hi, I'm Ada."],
        ["assistant", "Nice to meet you, Ada."],
        ["user", "What is my name?"],
        ["assistant", "You said: \"Hi, I'm Ada.\""]
      ])
      expect(lines.at(-1)).toBe("> What is my name?\nYou said: \"Hi, I'm Ada.\"")
      expect(yield* fs.readDirectory(directory)).toHaveLength(1)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("clientTool: the run pauses on the client tool and resume finishes it with the caller's answer", () =>
    Effect.gen(function*() {
      const { done, paused } = yield* clientTool.program
      expect(paused.at(-1)).toMatchObject({ type: "task-status", status: "waiting-input" })
      expect(paused.find((event) => event.type === "tool-input-required")).toMatchObject({
        toolName: "confirm",
        arguments: { action: "delete the old logs" }
      })
      expect(done).toMatchObject({ type: "task-complete", content: "Confirmed, so the old logs are deleted." })
    }))

  it.live("provider: run as written without LITELLM_BASE_URL, it streams from a stand-in server it starts itself", () =>
    Effect.gen(function*() {
      const run = yield* runScript("scripts/examples/provider.ts", ["LITELLM_BASE_URL"])
      expect(run.stderr).toBe("")
      expect(run.code).toBe(0)
      expect(run.stdout).toBe("LiteLLM (gpt-4o-mini): Hello! (a local stand-in server, not a model)\n")
    }))

  it.live("routing: run as written, a greeting goes to the small model's tier and a proof to the large one's", () =>
    Effect.gen(function*() {
      const run = yield* runScript("scripts/examples/routing.ts")
      expect(run.stderr).toBe("")
      expect(run.code).toBe(0)
      expect(run.stdout).toBe("Hi there!… simple → small\nProve that there are infinitely many pri… reasoning → large\n")
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
