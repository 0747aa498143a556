/**
 * The package as a user installs it: `exports` point at the JavaScript `tsc` builds into `dist/`
 * (with declarations), one entry for the whole kernel and one per module, and a plain `node` —
 * no TypeScript loader — can import and run it.
 */
import { describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"

const root = fileURLToPath(new URL("..", import.meta.url))
const run = promisify(execFile)
const pkg = JSON.parse(readFileSync(`${root}/package.json`, "utf8")) as {
  readonly exports: Record<string, Record<string, string>>
  readonly scripts: Record<string, string>
}

/** The namespaces `src/index.ts` exports, with their module paths under `src/`. */
const namespaces = [...readFileSync(`${root}/src/index.ts`, "utf8").matchAll(/export \* as (\w+) from "\.\/(.+)\.js"/g)]
  .map(([, name, path]) => ({ name: name!, path: path! }))

describe("package", () => {
  it("exports the whole kernel and every namespace of src/index.ts as its own entry", () => {
    expect(namespaces.length).toBeGreaterThan(20)
    const expected: Record<string, Record<string, string>> = {
      ".": { "effect-agent-kernel-source": "./src/index.ts", types: "./dist/index.d.ts", default: "./dist/index.js" }
    }
    for (const { name, path } of namespaces) {
      expected[`./${name}`] = {
        "effect-agent-kernel-source": `./src/${path}.ts`,
        types: `./dist/${path}.d.ts`,
        default: `./dist/${path}.js`
      }
    }
    expect(pkg.exports).toEqual(expected)
    for (const entry of Object.values(pkg.exports)) expect(existsSync(`${root}/${entry["effect-agent-kernel-source"]}`)).toBe(true)
    // `npm ci` / `npm install` build dist/ through `prepare`.
    expect(pkg.scripts.prepare).toBe("npm run build")
    expect(pkg.scripts.build).toBe("tsc -p tsconfig.build.json")
  })

  it("builds to JavaScript that plain node imports and runs, through the main entry and a module entry", async () => {
    await run(process.execPath, [`${root}/node_modules/typescript/bin/tsc`, "-p", "tsconfig.build.json"], { cwd: root })
    for (const { path } of namespaces) {
      expect(existsSync(`${root}/dist/${path}.js`)).toBe(true)
      expect(existsSync(`${root}/dist/${path}.d.ts`)).toBe(true)
    }
    // An agent run with the scripted model, imported the way a user's program would.
    const program = `
      import { Effect, Layer, Schema, Stream } from "effect"
      import { LocalTools, TestModel, Toolbox } from "effect-agent-kernel"
      import * as Agent from "effect-agent-kernel/Agent"
      const add = LocalTools.tool({
        name: "add", description: "Adds a and b.",
        parameters: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
        handler: ({ a, b }) => Effect.succeed({ sum: a + b })
      })
      const layer = Layer.merge(
        TestModel.layer([{ toolCalls: [{ name: "add", arguments: { a: 2, b: 3 } }] }, { text: "5" }]),
        Toolbox.layer([LocalTools.localTools([add])])
      )
      const events = await Effect.runPromise(Agent.run({ prompt: "2 + 3?" }).pipe(Stream.runCollect, Effect.provide(layer)))
      const types = [...events].map((event) => event.type)
      const done = [...events].find((event) => event.type === "tool-complete")
      const resolved = [import.meta.resolve("effect-agent-kernel"), import.meta.resolve("effect-agent-kernel/Agent")]
      console.log(JSON.stringify({ types, result: done && done.result, resolved }))
    `
    const { stdout } = await run(process.execPath, ["--input-type=module", "--eval", program], { cwd: root })
    const out = JSON.parse(stdout.trim().split("\n").at(-1)!) as {
      types: Array<string>
      result: unknown
      resolved: Array<string>
    }
    expect(out.resolved).toEqual([`file://${root}dist/index.js`, `file://${root}dist/agent/Agent.js`])
    expect(out.result).toEqual({ sum: 5 })
    expect(out.types).toContain("tool-start")
    expect(out.types.at(-1)).toBe("task-complete")
    // What users can import declares nothing meant for the kernel alone.
    for (const { path } of namespaces) {
      expect({ path, internal: readFileSync(`${root}/dist/${path}.d.ts`, "utf8").includes("@internal") })
        .toEqual({ path, internal: false })
    }
  }, 90_000)
})
