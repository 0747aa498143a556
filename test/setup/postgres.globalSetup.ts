/**
 * Vitest global setup: one throw-away PostgreSQL for the whole run, so the storage tests run on
 * a real server with no set-up beyond `npm ci`. Tests read where it is with
 * `inject("postgres")` and make a database of their own (see test/storage/postgresDatabase.ts).
 */
import type { TestProject } from "vitest/node"
import { startThrowawayPostgres } from "./throwawayPostgres.js"

declare module "vitest" {
  export interface ProvidedContext {
    readonly postgres: { readonly url: string; readonly password: string }
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const postgres = await startThrowawayPostgres()
  project.provide("postgres", { url: postgres.url, password: postgres.password })
  return postgres.stop
}
