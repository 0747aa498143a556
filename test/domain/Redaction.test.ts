import { describe, expect, it } from "@effect/vitest"
import * as Redacted from "effect/Redacted"
import * as fc from "fast-check"
import { decodeToolCall, parseToolArguments, protectToolCall } from "../../src/domain/Message.js"
import * as Redaction from "../../src/domain/Redaction.js"

describe("Redaction.scrub", () => {
  it("replaces a secret of any length in each form it takes inside text", () => {
    const secret = `k"3\\y`
    const text = [
      `raw ${secret}`,
      `json ${JSON.stringify({ key: secret })}`,
      `quoted json ${JSON.stringify(JSON.stringify({ key: secret }))}`,
      `url ?q=${encodeURIComponent(secret)}`
    ].join(" | ")
    const out = Redaction.scrub(text, [secret])
    for (const form of Redaction.formsOf(secret)) expect(out).not.toContain(form)
    expect(out.match(/<redacted>/g)).toHaveLength(4)
  })

  it("scrubs a 3-character secret and takes Redacted secrets", () => {
    expect(Redaction.scrub("the key abc was refused", [Redacted.make("abc")])).toBe("the key <redacted> was refused")
  })

  it("replaces credentials recognisable by their shape when their value is not known", () => {
    const out = Redaction.scrub(
      [
        "Authorization: Bearer tok_123456",
        "key sk-proj-abcdefghij",
        "AKIAABCDEFGHIJKLMNOP",
        "Credential=AKID/20260101/us-east-1/bedrock/aws4_request, Signature=0123456789abcdef0123",
        "https://ann:hunter2@db.example:5432/app",
        "https://api.example/v1?api_key=s3cr3t&x=1",
        `{"password":"pw-1","client_secret":"cs-2","name":"kept"}`,
        JSON.stringify(`{"access_token":"at-3"}`)
      ].join("\n"),
      []
    )
    for (const leaked of ["tok_123456", "sk-proj-abcdefghij", "AKIAABCDEFGHIJKLMNOP", "AKID/2026", "0123456789abcdef0123", "hunter2", "s3cr3t", "pw-1", "cs-2", "at-3"]) {
      expect(out).not.toContain(leaked)
    }
    expect(out).toContain(`"name":"kept"`)
    expect(out).toContain("x=1")
  })

  it("leaves no form of a secret in text that embeds it in any form (property)", () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Z0-9"\\/+ ]{1,12}$/),
        fc.stringMatching(/^[a-z.,:]{0,20}$/),
        fc.stringMatching(/^[a-z.,:]{0,20}$/),
        fc.nat(3),
        (secret, before, after, formIndex) => {
          const forms = Redaction.formsOf(secret)
          const out = Redaction.scrub(`${before}${forms[formIndex % forms.length]}${after}`, [secret])
          return forms.every((form) => !out.includes(form))
        }
      )
    )
  })
})

describe("sensitive tool arguments", () => {
  it("are wrapped in Redacted as a call is parsed, encode as <redacted>, and unwrap for the tool", () => {
    const call = decodeToolCall("c1", "pair", JSON.stringify({ apiKey: "sk-x\"y", model: "m" }), [
      { name: "pair", description: "", parameters: {}, sensitive: ["apiKey"] }
    ])
    expect(Redacted.isRedacted(call.arguments.apiKey)).toBe(true)
    expect(JSON.stringify(call)).not.toContain("sk-x")
    expect(Redaction.showArguments(call.arguments)).toEqual({ apiKey: "<redacted>", model: "m" })
    expect(Redaction.revealArguments(call.arguments)).toEqual({ apiKey: "sk-x\"y", model: "m" })
    expect(Redaction.secretsOfArguments(call.arguments)).toEqual(["sk-x\"y"])
  })

  it("broken JSON of a tool with sensitive fields is not quoted back", () => {
    const parsed = parseToolArguments(`{"apiKey": "sk-secret-1`, ["apiKey"])
    expect(parsed.argumentsError).toContain("not valid JSON")
    expect(parsed.argumentsError).not.toContain("sk-secret-1")
    expect(parseToolArguments(`{"city": "Lis`).argumentsError).toContain(`"city": "Lis`)
  })

  it("a call from a provider that did not protect it is protected by protectToolCall, broken JSON included", () => {
    const tools = [{ name: "pair", description: "", parameters: {}, sensitive: ["apiKey"] }]
    const valid = protectToolCall({ id: "c", name: "pair", arguments: { apiKey: "k" } }, tools)
    expect(Redacted.isRedacted(valid.arguments.apiKey)).toBe(true)
    const broken = protectToolCall({ id: "c", name: "pair", arguments: {}, argumentsError: `bad JSON: {"apiKey": "k-123` }, tools)
    expect(broken.argumentsError).not.toContain("k-123")
    const other = { id: "c", name: "other", arguments: { apiKey: "k" } }
    expect(protectToolCall(other, tools)).toBe(other)
  })

  it("scrubValue cleans every string of a result and returns clean values unchanged", () => {
    const clean = { a: [1, "x"], b: { c: "y" } }
    expect(Redaction.scrubValue(clean, Redaction.scrubber(["zzz"]))).toBe(clean)
    expect(Redaction.scrubValue({ a: ["zzz!"], b: { c: "y" } }, Redaction.scrubber(["zzz"]))).toEqual({ a: ["<redacted>!"], b: { c: "y" } })
  })
})
