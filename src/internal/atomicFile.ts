/**
 * Crash-safe file replacement shared by the file-backed stores: write a temporary file beside
 * the target, fsync it, then rename it over the target, so a reader sees the old file or the new
 * one and never a torn write.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type { PlatformError } from "@effect/platform/Error"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"

/** Writes `bytes` to `path` atomically with the given permission bits (and makes the parent dir). */
export const writeFileAtomic = (
  path: string,
  bytes: Uint8Array,
  options: { readonly mode: number; readonly dirMode?: number }
): Effect.Effect<void, PlatformError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const pathApi = yield* Path.Path
    const dir = pathApi.dirname(path)
    yield* fs.makeDirectory(dir, { recursive: true, ...(options.dirMode !== undefined ? { mode: options.dirMode } : {}) })
    const temp = pathApi.join(dir, `.${pathApi.basename(path)}.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`)
    yield* Effect.scoped(
      Effect.gen(function*() {
        const file = yield* fs.open(temp, { flag: "w", mode: options.mode })
        yield* file.writeAll(bytes)
        yield* file.sync
      })
    )
    yield* fs.rename(temp, path).pipe(Effect.tapError(() => fs.remove(temp).pipe(Effect.ignore)))
  })
