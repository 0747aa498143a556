/**
 * Crash-safe file replacement shared by the file-backed stores: write a temporary file beside
 * the target, fsync it, then rename it over the target, so a reader sees the old file or the new
 * one and never a torn write.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type { PlatformError } from "@effect/platform/Error"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"

/** How `writeFileAtomic` creates the file and its directory. */
export interface AtomicWriteOptions<E> {
  readonly mode: number
  readonly dirMode?: number
  /**
   * Runs after the new content is on disk and right before it replaces the target; a failure
   * leaves the target untouched. A store checks here that it still holds its cross-process lock,
   * since the fsync before it may take long.
   */
  readonly beforeReplace?: Effect.Effect<void, E>
}

/** Writes `bytes` to `path` atomically with the given permission bits (and makes the parent dir). */
export const writeFileAtomic = <E = never>(
  path: string,
  bytes: Uint8Array,
  options: AtomicWriteOptions<E>
): Effect.Effect<void, PlatformError | E, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const pathApi = yield* Path.Path
    const dir = pathApi.dirname(path)
    yield* fs.makeDirectory(dir, { recursive: true, ...(options.dirMode !== undefined ? { mode: options.dirMode } : {}) })
    const temp = pathApi.join(dir, `.${pathApi.basename(path)}.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`)
    // The temporary file goes away on any failure, so a full disk or a lost lock leaves no litter.
    yield* Effect.scoped(
      Effect.gen(function*() {
        const file = yield* fs.open(temp, { flag: "w", mode: options.mode })
        yield* file.writeAll(bytes)
        yield* file.sync
      })
    ).pipe(
      Effect.zipRight(options.beforeReplace ?? Effect.void),
      Effect.zipRight(fs.rename(temp, path)),
      Effect.tapError(() => fs.remove(temp).pipe(Effect.ignore))
    )
  })
