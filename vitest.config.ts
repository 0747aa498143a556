import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

export default defineConfig({
  // Tests run the TypeScript sources: `effect-agent-kernel` imports (the README examples) resolve
  // to `src/`, as the package's `effect-agent-kernel-source` condition does for `tsc`, not to
  // the built `dist/`.
  resolve: {
    alias: [{ find: /^effect-agent-kernel$/, replacement: fileURLToPath(new URL("src/index.ts", import.meta.url)) }]
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks"
  }
})
