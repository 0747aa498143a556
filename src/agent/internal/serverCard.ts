/** The agent card a served agent publishes at its well-known paths. */
import { AgentCard } from "@a2a-js/sdk"
import type { CardInfo } from "../AgentServer.js"

export const rpcPath = "/a2a/jsonrpc"
export const cardPaths: ReadonlySet<string> = new Set(["/.well-known/agent-card.json", "/.well-known/agent.json"])

export const makeCard = (info: CardInfo, url: string, bearer: boolean): AgentCard =>
  AgentCard.fromJSON({
    name: info.name,
    description: info.description,
    version: info.version ?? "0.1.0",
    supportedInterfaces: [{ url: `${url}${rpcPath}`, protocolBinding: "JSONRPC", protocolVersion: "1.0" }],
    capabilities: { streaming: true, pushNotifications: false },
    defaultInputModes: ["text/plain"],
    defaultOutputModes: ["text/plain", "application/json"],
    skills: (info.skills ?? []).map((skill) => ({ tags: [], ...skill })),
    ...(bearer
      ? {
        securitySchemes: { bearer: { httpAuthSecurityScheme: { scheme: "Bearer" } } },
        securityRequirements: [{ schemes: { bearer: { list: [] } } }]
      }
      : {})
  })
