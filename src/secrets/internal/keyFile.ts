/**
 * What the file store trusts on disk before it uses a key file: the key file must be a regular
 * file (not a symbolic link), owned by this user, readable and writable by nobody else; and the
 * directories holding the key file and the store must not be writable by other users, unless
 * the directory is sticky (like `/tmp`), where others can add files but not replace ours — and a
 * key file they add is refused by the ownership check.
 *
 * A key file planted by someone else, or one others can read, gives them the secrets, so it is
 * refused with a `SecretsError` that says what is wrong and the command that fixes it; nothing
 * is read from it and nothing is changed. A directory that other users can write is refused too,
 * not tightened: such a directory may already hold a file someone else put there, and a silent
 * `chmod` would hide that and then trust it, and would change a directory the user may share on
 * purpose. Directories the store creates itself are 0700 from the start. Only each file's own
 * directory is checked, as `ssh` checks `~/.ssh`; a looser ancestor is the user's to judge.
 *
 * The key file is opened with O_NOFOLLOW and checked on the open descriptor, so it cannot be
 * swapped for a link between the check and the read. Where there is no POSIX ownership (Windows),
 * only the link check applies.
 *
 * @internal
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Fs from "node:fs"
import * as FsPromises from "node:fs/promises"
import { SecretsError } from "../../domain/Errors.js"
import * as Sealed from "./sealedFile.js"

const octal = (mode: number) => `0${(mode & 0o777).toString(8)}`

const insecure = (path: string, message: string) => new SecretsError({ reason: "Io", path, message })

const currentUid = (): number | undefined => process.getuid?.()

/** Why an open key file cannot be trusted, or `undefined` when it can. */
const keyFileProblem = (keyFile: string, info: Fs.Stats): string | undefined => {
  if (!info.isFile()) {
    return `The key file ${keyFile} is not a regular file. Move it away and restore the key file that belongs to ` +
      "the store."
  }
  const uid = currentUid()
  if (uid === undefined) return undefined
  if (info.uid !== uid) {
    return `The key file ${keyFile} belongs to user id ${info.uid}, not to this user (id ${uid}), so someone else ` +
      `may have planted or replaced it. If the key is genuine, run \`chown ${uid} ${keyFile}\`; otherwise move it ` +
      "away and restore the key file that belongs to the store. It was not read."
  }
  if ((info.mode & 0o077) !== 0) {
    return `The key file ${keyFile} has mode ${octal(info.mode)}, so other users can read or change it. Run ` +
      `\`chmod 600 ${keyFile}\`; if others may have read it, treat the stored secrets as exposed and rotate them. ` +
      "It was not read."
  }
  return undefined
}

type KeyFileRead =
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Untrusted"; readonly problem: string }
  | { readonly _tag: "Read"; readonly bytes: Uint8Array }

const openTrusted = async (keyFile: string): Promise<KeyFileRead> => {
  let handle: FsPromises.FileHandle
  try {
    handle = await FsPromises.open(keyFile, Fs.constants.O_RDONLY | (Fs.constants.O_NOFOLLOW ?? 0))
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === "ENOENT") return { _tag: "Missing" }
    if (code !== "ELOOP") throw error
    return {
      _tag: "Untrusted",
      problem: `The key file ${keyFile} is a symbolic link. The store trusts only a regular file that this user ` +
        "owns with mode 0600, because whoever controls the link's target controls the key. Replace the link with " +
        "the key file itself (the link was not followed)."
    }
  }
  try {
    const problem = keyFileProblem(keyFile, await handle.stat())
    return problem === undefined ? { _tag: "Read", bytes: new Uint8Array(await handle.readFile()) } : { _tag: "Untrusted", problem }
  } finally {
    await handle.close()
  }
}

/**
 * The key file's bytes, `None` when it does not exist; fails unless it is trusted (see above) and
 * holds exactly one key.
 *
 * @internal
 */
export const readTrustedKeyFile = (keyFile: string, storePath: string): Effect.Effect<Option.Option<Uint8Array>, SecretsError> =>
  Effect.tryPromise({
    try: () => openTrusted(keyFile),
    catch: (error) =>
      new SecretsError({
        reason: "Io",
        path: keyFile,
        message: `Could not read the key file ${keyFile}: ${(error as Error).message}. Check that the path is correct ` +
          "and that this user may read it."
      })
  }).pipe(Effect.flatMap((read): Effect.Effect<Option.Option<Uint8Array>, SecretsError> => {
    switch (read._tag) {
      case "Missing":
        return Effect.succeed(Option.none())
      case "Untrusted":
        return Effect.fail(insecure(keyFile, read.problem))
      case "Read":
        return read.bytes.length === Sealed.KEY_FILE_BYTES ? Effect.succeed(Option.some(read.bytes)) : Effect.fail(
          new SecretsError({
            reason: "Corrupt",
            path: keyFile,
            message: `The key file ${keyFile} is damaged: it holds ${read.bytes.length} bytes, not ` +
              `${Sealed.KEY_FILE_BYTES}. The file was left untouched. Restore it from a backup; without it ` +
              `${storePath} cannot be read.`
          })
        )
    }
  }))

/**
 * Fails when `directory` exists and other users can write it without the sticky bit, or it
 * belongs to someone other than this user or root. A missing directory passes: the store
 * creates it 0700.
 *
 * @internal
 */
export const checkPrivateDirectory = (
  directory: string,
  holds: string
): Effect.Effect<void, SecretsError, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.stat(directory)).pipe(
    Effect.map(Option.some),
    Effect.catchIf(
      (error: PlatformError) => error._tag === "SystemError" && error.reason === "NotFound",
      () => Effect.succeed(Option.none<FileSystem.File.Info>())
    ),
    Effect.mapError((error) =>
      new SecretsError({
        reason: "Io",
        path: directory,
        message: `Could not check the directory ${directory} holding ${holds}: ${error.message}. Check that the path is ` +
          "correct and that this user may read it."
      })
    ),
    Effect.flatMap(Option.match({
      onNone: () => Effect.void,
      onSome: (info) => {
        const uid = currentUid()
        if (uid === undefined) return Effect.void
        const owner = Option.getOrElse(info.uid, () => uid)
        if (owner !== uid && owner !== 0) {
          return Effect.fail(insecure(
            directory,
            `The directory ${directory} holding ${holds} belongs to user id ${owner}, not to this user (id ${uid}) ` +
              "or root, so that user can replace the files in it. Keep the store in a directory of your own."
          ))
        }
        if ((info.mode & 0o022) !== 0 && (info.mode & 0o1000) === 0) {
          return Effect.fail(insecure(
            directory,
            `The directory ${directory} holding ${holds} has mode ${octal(info.mode)}, so other users can add or ` +
              `replace files in it. Run \`chmod 700 ${directory}\` and check that the files in it are yours, or keep ` +
              "the store in a private directory. Nothing was read or written."
          ))
        }
        return Effect.void
      }
    }))
  )
