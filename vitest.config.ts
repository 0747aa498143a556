import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

// Tests run the TypeScript sources: every `effect-agent-kernel` entry (the main one, used by the
// README examples, and each module's) resolves to `src/` through the package's
// `effect-agent-kernel-source` condition, as it does for `tsc`, never to a possibly stale `dist/`.
const exportsMap: Record<string, Record<string, string>> = JSON.parse(
  readFileSync(new URL("package.json", import.meta.url), "utf8")
).exports
const alias = Object.entries(exportsMap).map(([entry, targets]) => ({
  find: new RegExp(`^effect-agent-kernel${entry === "." ? "" : entry.slice(1).replace("/", "\\/")}$`),
  replacement: fileURLToPath(new URL(targets["effect-agent-kernel-source"]!, import.meta.url))
}))

export default defineConfig({
  resolve: { alias },
  test: {
    include: ["test/**/*.test.ts"],
    // A throw-away PostgreSQL for the storage tests (test/setup/throwawayPostgres.ts).
    globalSetup: ["test/setup/postgres.globalSetup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks"
  }
})
