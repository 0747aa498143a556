import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import * as Reads from "../../../src/tools/internal/reads.js"

/** Reads handing out `chunks` in turn, counting pulls and recording how they were closed. */
const scripted = <A>(chunks: ReadonlyArray<ReadonlyArray<A>>, options?: { readonly sayDone?: boolean; readonly failAt?: number }) => {
  const log = { pulls: 0, closes: [] as Array<Exit.Exit<unknown, unknown>> }
  let at = 0
  const reads: Reads.Reads<A, string> = {
    next: Effect.suspend(() => {
      log.pulls++
      if (options?.failAt === at) return Effect.fail("broken")
      return Effect.succeed(at < chunks.length ? Chunk.fromIterable(chunks[at++]!) : undefined)
    }),
    get done() {
      return options?.sayDone === true && at === chunks.length
    },
    close: (exit) => Effect.sync(() => void log.closes.push(exit))
  }
  return { reads, log }
}

describe("reads", () => {
  it.effect("toStream emits every chunk in order and closes the reads once with the stream's exit", () =>
    Effect.gen(function*() {
      const { log, reads } = scripted([[1, 2], [3]])
      expect(Chunk.toReadonlyArray(yield* Stream.runCollect(Reads.toStream(() => reads)))).toEqual([1, 2, 3])
      expect(log.pulls).toBe(3)
      expect(log.closes).toHaveLength(1)
      expect(Exit.isSuccess(log.closes[0]!)).toBe(true)
    }))

  it.effect("a run that says it is done is not pulled again", () =>
    Effect.gen(function*() {
      const { log, reads } = scripted([[1], [2]], { sayDone: true })
      expect(Chunk.toReadonlyArray(yield* Stream.runCollect(Reads.toStream(() => reads)))).toEqual([1, 2])
      expect(log.pulls).toBe(2)
      const again = scripted([[1], [2]], { sayDone: true })
      const seen: Array<number> = []
      yield* Reads.runForEach(again.reads, (chunk) => Effect.sync(() => seen.push(...chunk)))
      expect(seen).toEqual([1, 2])
      expect(again.log.pulls).toBe(2)
    }))

  it.effect("toStream opens nothing before the stream runs, and closes reads taken from early", () =>
    Effect.gen(function*() {
      const { log, reads } = scripted([[1], [2], [3]])
      let opened = 0
      const stream = Reads.toStream(() => {
        opened++
        return reads
      })
      expect(opened).toBe(0)
      expect(Chunk.toReadonlyArray(yield* Stream.runCollect(Stream.take(stream, 1)))).toEqual([1])
      expect(opened).toBe(1)
      expect(log.closes).toHaveLength(1)
    }))

  it.effect("runForEach fails with the reads' failure or the callback's, closing the reads with it", () =>
    Effect.gen(function*() {
      const failing = scripted([[1]], { failAt: 1 })
      expect(yield* Effect.flip(Reads.runForEach(failing.reads, () => Effect.void))).toBe("broken")
      expect(failing.log.closes).toHaveLength(1)
      expect(Exit.isFailure(failing.log.closes[0]!)).toBe(true)

      const refused = scripted([[1], [2]])
      expect(yield* Effect.flip(Reads.runForEach(refused.reads, () => Effect.fail("refused")))).toBe("refused")
      expect(refused.log.pulls).toBe(1)
      expect(refused.log.closes).toHaveLength(1)
    }))
})
