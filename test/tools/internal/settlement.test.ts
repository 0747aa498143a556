import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as HashMap from "effect/HashMap"
import * as Logger from "effect/Logger"
import type { ToolCall } from "../../../src/domain/Message.js"
import { toolError } from "../../../src/tools/internal/callEvents.js"
import * as Settlement from "../../../src/tools/internal/settlement.js"

const call: ToolCall = { id: "call-1", name: "lookup", arguments: {} }

class DiskFull extends Data.TaggedError("DiskFull")<{ readonly message: string }> {}

describe("settlement", () => {
  it("a call whose run failed ends with its own ToolError", () => {
    const error = toolError(call, "Timeout", "too slow")
    expect(Settlement.settle(call, Cause.fail(error))).toBe(error)
    expect(Settlement.isCrash(Cause.fail(error))).toBe(false)
  })

  it("a call whose run was interrupted ends saying so", () => {
    const cause = Cause.interrupt(FiberId.none)
    expect(Settlement.settle(call, cause)).toMatchObject({
      reason: "ExecutionFailed",
      toolName: "lookup",
      toolCallId: "call-1",
      message: `Tool "lookup" was interrupted before it finished.`
    })
    expect(Settlement.isCrash(cause)).toBe(false)
  })

  it("a call whose run crashed ends saying so, describing the defect, scrubbed", () => {
    expect(Settlement.settle(call, Cause.die(new Error("bug")))).toMatchObject({
      reason: "ExecutionFailed",
      message: `Tool "lookup" crashed: bug`
    })
    expect(Settlement.crashed(call, new DiskFull({ message: "no space" })).message).toBe(`Tool "lookup" crashed: DiskFull: no space`)
    expect(Settlement.crashed(call, { code: 7 }).message).toBe(`Tool "lookup" crashed: {"code":7}`)
    expect(Settlement.crashed(call, new TypeError("")).message).toBe(`Tool "lookup" crashed: TypeError`)
    expect(Settlement.crashed(call, "hunter2 leaked", (text) => text.replace("hunter2", "[REDACTED]")).message)
      .toBe(`Tool "lookup" crashed: [REDACTED] leaked`)
    expect(Settlement.isCrash(Cause.die("bug"))).toBe(true)
  })

  it.effect("a crash is logged at error level with its cause, naming the calls and the context", () =>
    Effect.gen(function*() {
      const logs: Array<{ level: string; text: string; annotations: Record<string, unknown> }> = []
      const capture = Logger.add(Logger.make(({ annotations, logLevel, message }) => {
        logs.push({
          level: logLevel.label,
          text: Array.isArray(message) ? message.join(" ") : String(message),
          annotations: Object.fromEntries(HashMap.toEntries(annotations))
        })
      }))
      const other: ToolCall = { id: "call-2", name: "fetch", arguments: {} }
      yield* Settlement.logCrash([call, other], "ctx-1", Cause.die(new Error("bug in hunter2")), (text) =>
        text.replaceAll("hunter2", "[REDACTED]")).pipe(Effect.provide(capture))
      expect(logs).toHaveLength(1)
      expect(logs[0]!.level).toBe("ERROR")
      expect(logs[0]!.text).toContain(`Tools "lookup", "fetch" crashed`)
      expect(logs[0]!.text).toContain("Error: bug in [REDACTED]")
      expect(logs[0]!.text).not.toContain("hunter2")
      expect(logs[0]!.annotations).toEqual({ toolNames: "lookup,fetch", toolCallIds: "call-1,call-2", contextId: "ctx-1" })
    }))
})
