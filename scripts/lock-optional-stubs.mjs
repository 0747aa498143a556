// Keeps `npm ci` working against a registry mirror that lacks other platforms' optional
// binaries (for example @rollup/rollup-android-arm64): npm then leaves them out of
// package-lock.json and `npm ci` rejects the lock as out of sync with package.json. This adds
// the entry npm would have written (exact version, optional); npm skips an optional package it
// cannot install. Run after every `npm install` that changes the lock:
//   node scripts/lock-optional-stubs.mjs
import { readFileSync, writeFileSync } from "node:fs"

const path = new URL("../package-lock.json", import.meta.url)
const lock = JSON.parse(readFileSync(path, "utf8"))
const packages = lock.packages
let added = 0
for (const [at, entry] of Object.entries(packages)) {
  for (const [name, spec] of Object.entries(entry.optionalDependencies ?? {})) {
    const nested = `${at === "" ? "" : `${at}/`}node_modules/${name}`
    const hoisted = `node_modules/${name}`
    if (nested in packages || hoisted in packages) continue
    if (!/^\d+\.\d+\.\d+(-[\w.]+)?$/.test(spec)) continue
    packages[hoisted] = { version: spec, ...(entry.dev ? { dev: true } : {}), optional: true }
    added++
  }
}
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`)
console.log(`lock-optional-stubs: added ${added} entr${added === 1 ? "y" : "ies"}`)
