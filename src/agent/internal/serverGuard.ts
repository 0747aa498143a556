/**
 * Which requests reach a served agent at all, judged by their `Host` and `Origin` headers
 * before anything else is read. A web page in the user's browser can send requests to this
 * machine, and by pointing its own name at 127.0.0.1 (DNS rebinding) it can even read the
 * answers; but its requests then still name the page's site in `Host`. So only the names the
 * server is known by pass the `Host` check. A request sent by a page carries `Origin`: it passes
 * only from the server's own origin or an allow-listed one, and allow-listed origins get the
 * CORS headers their pages need to read the answers.
 */
import * as Os from "node:os"

export interface GuardOptions {
  /** The interface the server is bound to, as given (`127.0.0.1`, `::1`, `0.0.0.0`, a name). */
  readonly host: string
  readonly port: number
  readonly allowedHosts: ReadonlyArray<string>
  readonly allowedOrigins: ReadonlyArray<string>
}

export type Verdict =
  | { readonly _tag: "Allowed"; readonly corsHeaders: Readonly<Record<string, string>> }
  | { readonly _tag: "Refused"; readonly message: string }

/** Judges a request by its `Host` and `Origin` headers. */
export type Guard = (host: string | undefined, origin: string | undefined) => Verdict

export const makeGuard = (options: GuardOptions): Guard => {
  const port = String(options.port)
  const served = new Set<string>()
  for (const name of serverNames(options.host.toLowerCase())) {
    served.add(`${name}:${port}`)
    if (port === "80") served.add(name)
  }
  const extraHosts = options.allowedHosts.map((entry) => splitAuthority(entry.trim().toLowerCase()))
  const origins = new Set(options.allowedOrigins.map(normalizeOrigin))
  const primary = `${bracketed(options.host.toLowerCase())}:${port}`

  const hostAllowed = (host: string): boolean => {
    if (served.has(host)) return true
    const { name, port: given } = splitAuthority(host)
    return extraHosts.some((entry) => entry.name === name && (entry.port === undefined || entry.port === given))
  }

  return (hostHeader, originHeader) => {
    const host = hostHeader?.trim().toLowerCase()
    if (host === undefined || host === "" || !hostAllowed(host)) {
      return refused(
        `Forbidden: this agent does not answer requests for host "${hostHeader ?? ""}". Call it as ${primary} ` +
          "(or a name in AgentServer's allowedHosts), or add the name you use to allowedHosts. A request naming " +
          "another host may come from a web page that points its own name at this machine."
      )
    }
    if (originHeader === undefined) return allowed({})
    const origin = normalizeOrigin(originHeader)
    if (origins.has(origin)) return allowed({ "access-control-allow-origin": originHeader, vary: "origin" })
    if (originHost(origin) === host) return allowed({})
    return refused(
      `Forbidden: this agent does not accept requests from web pages at ${originHeader}. ` +
        "Add the origin to AgentServer's allowedOrigins to let pages there call it."
    )
  }
}

const allowed = (corsHeaders: Readonly<Record<string, string>>): Verdict => ({ _tag: "Allowed", corsHeaders })
const refused = (message: string): Verdict => ({ _tag: "Refused", message })

const loopbackNames = ["localhost", "127.0.0.1", "[::1]"]

/** The names a client may use for a server bound to `host`. */
const serverNames = (host: string): ReadonlyArray<string> => {
  if (host === "0.0.0.0" || host === "::" || host === "") {
    // Bound everywhere: the machine's own addresses and name. A rebinding page cannot make a
    // browser send a bare IP address or this machine's name as the host of its own site.
    const addresses = Object.values(Os.networkInterfaces()).flatMap((list) => list ?? []).map((info) => bracketed(info.address.toLowerCase()))
    return [...loopbackNames, ...addresses, Os.hostname().toLowerCase()]
  }
  return isLoopback(host) ? [...loopbackNames, bracketed(host)] : [bracketed(host)]
}

export const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || host === "::ffff:127.0.0.1" || /^127\.\d+\.\d+\.\d+$/.test(host)

const bracketed = (host: string): string => (host.includes(":") && !host.startsWith("[") ? `[${host}]` : host)

/** `name[:port]` or `[v6][:port]`, lower-case. */
const splitAuthority = (authority: string): { readonly name: string; readonly port: string | undefined } => {
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(authority)
  return match === null ? { name: authority, port: undefined } : { name: match[1]!, port: match[2] }
}

const normalizeOrigin = (origin: string): string => origin.trim().toLowerCase().replace(/\/+$/, "")

const originHost = (origin: string): string | undefined => {
  try {
    return new URL(origin).host
  } catch {
    return undefined
  }
}
