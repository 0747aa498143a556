/**
 * A database of its own in the suite's throw-away PostgreSQL (started by
 * test/setup/postgres.globalSetup.ts), made for one test and dropped after it, so tests that run
 * in parallel never see each other's rows.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { inject } from "vitest"
import { connectionFields } from "../../src/storage/internal/openDatabase.js"

/** The cluster's address and password, as the global setup provided them. */
export const postgresServer = (): { readonly url: string; readonly password: string } => inject("postgres")

/** The URL of `database` on the suite's cluster (no password in it). */
export const databaseUrl = (database: string): string => {
  const url = new URL(postgresServer().url)
  url.pathname = `/${database}`
  return url.toString()
}

let counter = 0

/** Creates a fresh database for the scope; yields its URL and the password as `Storage.Options` take them. */
export const freshDatabase: Effect.Effect<
  { readonly url: string; readonly password: Redacted.Redacted<string> },
  unknown,
  Scope.Scope
> = Effect.gen(function*() {
  const server = postgresServer()
  const password = Redacted.make(server.password)
  const name = `test_${process.pid}_${Date.now().toString(36)}_${counter++}`
  const admin = yield* PgClient.make({ ...connectionFields(server.url), password, maxConnections: 1 }).pipe(
    Effect.provide(Reactivity.layer)
  )
  yield* admin.unsafe(`CREATE DATABASE ${name}`)
  yield* Effect.addFinalizer(() => admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).pipe(Effect.ignore))
  return { url: databaseUrl(name), password }
})
