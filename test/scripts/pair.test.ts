import { describe, expect, it } from "@effect/vitest"
import { parseArguments, UsageError } from "../../scripts/pair.js"

const KEY = "sk-cmdline-leak-0123456789"

const refusal = (args: ReadonlyArray<string>) => {
  const parsed = parseArguments(args)
  if (!(parsed instanceof UsageError)) throw new Error(`expected a UsageError, got ${JSON.stringify(parsed)}`)
  return parsed.message
}

describe("scripts/pair.ts parseArguments", () => {
  it("reads the provider and the options", () => {
    expect(parseArguments(["OpenAI", "--model", "gpt-4.1-mini", "--base-url", "http://127.0.0.1:9999"])).toEqual({
      provider: "openai",
      unpair: false,
      deleteKey: false,
      noKey: false,
      model: "gpt-4.1-mini",
      baseUrl: "http://127.0.0.1:9999"
    })
    expect(parseArguments(["bedrock", "--region", "eu-west-1", "--no-key", "--config", "/tmp/c.json", "--secrets", "/tmp/s.enc"]))
      .toEqual({
        provider: "bedrock",
        unpair: false,
        deleteKey: false,
        noKey: true,
        region: "eu-west-1",
        configPath: "/tmp/c.json",
        secretsPath: "/tmp/s.enc"
      })
    expect(parseArguments(["ollama", "--unpair", "--delete-key"])).toMatchObject({ provider: "ollama", unpair: true, deleteKey: true })
    expect(parseArguments(["--help"])).toBe("help")
  })

  it("refuses a key on the command line in any spelling, without repeating it", () => {
    for (const args of [
      ["openai", `--key=${KEY}`],
      ["openai", "--key", KEY],
      ["openai", "--api-key", KEY],
      ["openai", `--apiKey=${KEY}`],
      ["bedrock", "--secret-access-key", KEY],
      ["bedrock", `--access-key-id=${KEY}`]
    ]) {
      const message = refusal(args)
      expect(message).toMatch(/is refused/)
      expect(message).not.toContain(KEY)
    }
  })

  it("refuses an extra argument, which may be a pasted key, without repeating it", () => {
    const message = refusal(["openai", KEY])
    expect(message).toContain("Only one argument")
    expect(message).not.toContain(KEY)
    expect(refusal(["openai", "--model", "m", `--mdoel=${KEY}`])).not.toContain(KEY)
  })

  it("refuses a missing or unknown provider and options that do not fit", () => {
    expect(refusal([])).toContain("openai, litellm, bedrock, ollama")
    expect(refusal(["anthropic"])).toContain('Unknown provider "anthropic"')
    expect(refusal(["openai", "--delete-key"])).toContain("--delete-key only goes with --unpair")
    expect(refusal(["openai", "--region", "us-east-1"])).toContain("bedrock only")
    expect(refusal(["openai", "--no-key"])).toContain("--no-key is refused")
    expect(refusal(["litellm", "--unpair", "--model", "x"])).toContain("--unpair takes no")
    expect(refusal(["litellm", "--model"])).toContain("missing its value")
  })
})
