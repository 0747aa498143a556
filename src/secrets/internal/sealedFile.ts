/**
 * The on-disk format of the encrypted secrets store, and the cryptography behind it.
 *
 * Layout (big-endian integers):
 *
 * ```
 * header    magic "EAKS" | version u8 | kdf u8 | scrypt logN u8 | r u8 | p u8 | kdf salt (16)
 *           | file salt (16)
 * verifier  nonce (12) | AES-256-GCM(known constant, aad = header) (16) | tag (16)
 * count     u32
 * entry*    index (32) | nonce (12) | length u32 | ciphertext (length) | tag (16)
 * checksum  SHA-256 of every byte above (32)
 * ```
 *
 * The unkeyed checksum is what tells corruption from a wrong key: it is checked before any key
 * is derived, so a truncated file or a flipped byte anywhere (salt and checksum included) is
 * `Corrupt`, and a verifier that does not open on an intact file can only mean the key is wrong.
 * The master key (from the key file, or scrypt of the passphrase with the kdf salt) never
 * encrypts directly: every write draws a fresh file salt and derives its own cipher and index
 * keys from it with HKDF, so random nonces are never drawn twice under one key in practice.
 * Entries are indexed by HMAC-SHA256 of the key name; the name itself is sealed with the value,
 * and each entry's AAD binds it to this file's header and to its index.
 */
import * as Crypto from "node:crypto"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"

/** How the store's key was obtained. */
export type KdfKind = "keyFile" | "scrypt"

/** How the master key is derived; kept from write to write. */
export interface Header {
  readonly kdf: KdfKind
  readonly logN: number
  readonly r: number
  readonly p: number
  readonly salt: Uint8Array
}

/** The per-write subkeys derived from the master key. */
interface Keys {
  readonly encryption: Uint8Array
  readonly index: Uint8Array
}

/** A parsed file whose checksum matched, not yet opened with a key. */
export interface ParsedFile {
  readonly header: Header
  readonly fileSalt: Uint8Array
  /** Everything before the verifier: the AAD of every sealed part. */
  readonly headerBytes: Uint8Array
  readonly verifier: Sealed
  readonly entries: ReadonlyArray<{ readonly index: Uint8Array; readonly sealed: Sealed }>
}

interface Sealed {
  readonly nonce: Uint8Array
  readonly ciphertext: Uint8Array
  readonly tag: Uint8Array
}

/** Why a file could not be read, before it is turned into a `SecretsError` with the path. */
export type FormatProblem =
  | { readonly _tag: "Corrupt"; readonly detail: string }
  | { readonly _tag: "WrongKey" }

const MAGIC = Buffer.from("EAKS", "ascii")
const VERSION = 1
const SALT_BYTES = 16
const NONCE_BYTES = 12
const TAG_BYTES = 16
const INDEX_BYTES = 32
const CHECKSUM_BYTES = 32
const HEADER_BYTES = MAGIC.length + 5 + SALT_BYTES + SALT_BYTES
const VERIFIER_PLAINTEXT = Buffer.from("effect-agent-kernel secrets ok", "ascii")
const VERIFIER_BYTES = NONCE_BYTES + VERIFIER_PLAINTEXT.length + TAG_BYTES
const MIN_FILE_BYTES = HEADER_BYTES + VERIFIER_BYTES + 4 + CHECKSUM_BYTES

/** Default scrypt cost: 2^15 × 8 × 1 needs 32 MiB and about 0.1 s, once per process. */
export const defaultScrypt = { logN: 15, r: 8, p: 1 } as const

/** Bytes in a key file (a 256-bit key). */
export const KEY_FILE_BYTES = 32

/** A fresh header for a new store. */
export const freshHeader = (kdf: KdfKind): Header =>
  kdf === "scrypt"
    ? { kdf, ...defaultScrypt, salt: Crypto.randomBytes(SALT_BYTES) }
    : { kdf, logN: 0, r: 0, p: 0, salt: Crypto.randomBytes(SALT_BYTES) }

/** A fresh random 256-bit key for a key file. */
export const freshKeyFileKey = (): Uint8Array => Crypto.randomBytes(KEY_FILE_BYTES)

const encodeHeader = (header: Header, fileSalt: Uint8Array): Buffer =>
  Buffer.concat([
    MAGIC,
    Buffer.from([VERSION, header.kdf === "keyFile" ? 1 : 2, header.logN, header.r, header.p]),
    header.salt,
    fileSalt
  ])

/** Derives one write's subkeys, so the index HMAC and the cipher never share a key. */
const subkeys = (master: Uint8Array, salt: Uint8Array): Keys => ({
  encryption: new Uint8Array(Crypto.hkdfSync("sha256", master, salt, "effect-agent-kernel/secrets/encryption", 32)),
  index: new Uint8Array(Crypto.hkdfSync("sha256", master, salt, "effect-agent-kernel/secrets/index", 32))
})

/** The master key of a passphrase store: scrypt with the header's salt and cost (off the main thread). */
export const masterFromPassphrase = (passphrase: Redacted.Redacted<string>, header: Header): Effect.Effect<Uint8Array> =>
  Effect.async<Uint8Array>((resume) => {
    const N = 2 ** header.logN
    const maxmem = 256 * N * header.r * header.p + 1024 * 1024
    Crypto.scrypt(
      Redacted.value(passphrase).normalize("NFC"),
      header.salt,
      32,
      { N, r: header.r, p: header.p, maxmem },
      (error, master) => {
        if (error) resume(Effect.die(error))
        else resume(Effect.succeed(new Uint8Array(master)))
      }
    )
  })

const seal = (key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Sealed => {
  const nonce = Crypto.randomBytes(NONCE_BYTES)
  const cipher = Crypto.createCipheriv("aes-256-gcm", key, nonce)
  cipher.setAAD(aad)
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return { nonce, ciphertext, tag: cipher.getAuthTag() }
}

const open = (key: Uint8Array, sealed: Sealed, aad: Uint8Array): Uint8Array | undefined => {
  try {
    const decipher = Crypto.createDecipheriv("aes-256-gcm", key, sealed.nonce)
    decipher.setAAD(aad)
    decipher.setAuthTag(sealed.tag)
    return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()])
  } catch {
    return undefined
  }
}

const indexOf = (keys: Keys, name: string): Buffer => Crypto.createHmac("sha256", keys.index).update(name, "utf8").digest()

const entryPlaintext = (name: string, value: string): Buffer => {
  const nameBytes = Buffer.from(name, "utf8")
  const length = Buffer.alloc(4)
  length.writeUInt32BE(nameBytes.length)
  return Buffer.concat([length, nameBytes, Buffer.from(value, "utf8")])
}

/** Seals every entry under a fresh file salt and nonce and lays out the whole file, checksum last. */
export const encodeFile = (
  header: Header,
  master: Uint8Array,
  entries: ReadonlyMap<string, Redacted.Redacted<string>>
): Uint8Array => {
  const fileSalt = Crypto.randomBytes(SALT_BYTES)
  const keys = subkeys(master, fileSalt)
  const headerBytes = encodeHeader(header, fileSalt)
  const verifier = seal(keys.encryption, VERIFIER_PLAINTEXT, headerBytes)
  const sealedEntries = Array.from(entries, ([name, value]) => {
    const index = indexOf(keys, name)
    return { index, sealed: seal(keys.encryption, entryPlaintext(name, Redacted.value(value)), Buffer.concat([headerBytes, index])) }
  }).sort((a, b) => Buffer.compare(a.index, b.index))
  const count = Buffer.alloc(4)
  count.writeUInt32BE(sealedEntries.length)
  const parts: Array<Uint8Array> = [headerBytes, verifier.nonce, verifier.ciphertext, verifier.tag, count]
  for (const { index, sealed } of sealedEntries) {
    const length = Buffer.alloc(4)
    length.writeUInt32BE(sealed.ciphertext.length)
    parts.push(index, sealed.nonce, length, sealed.ciphertext, sealed.tag)
  }
  const body = Buffer.concat(parts)
  return Buffer.concat([body, Crypto.createHash("sha256").update(body).digest()])
}

const corrupt = (detail: string): FormatProblem => ({ _tag: "Corrupt", detail })

/** Checks the checksum and the structure; needs no key. A failure says what is damaged. */
export const parseFile = (bytes: Uint8Array): Either.Either<ParsedFile, string> => {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (data.length >= MAGIC.length && !data.subarray(0, MAGIC.length).equals(MAGIC)) {
    return Either.left("it is not an effect-agent-kernel secrets file")
  }
  if (data.length < MIN_FILE_BYTES) {
    return Either.left(`it is truncated (${data.length} bytes)`)
  }
  const body = data.subarray(0, data.length - CHECKSUM_BYTES)
  const checksum = Crypto.createHash("sha256").update(body).digest()
  if (!Crypto.timingSafeEqual(checksum, data.subarray(data.length - CHECKSUM_BYTES))) {
    return Either.left("its checksum does not match (it was truncated or modified)")
  }
  const version = data[MAGIC.length]
  if (version !== VERSION) {
    return Either.left(`it has format version ${version}; this version reads only ${VERSION}`)
  }
  const kdfByte = data[MAGIC.length + 1]
  const [logN, r, p] = [data[MAGIC.length + 2], data[MAGIC.length + 3], data[MAGIC.length + 4]]
  if (kdfByte !== 1 && kdfByte !== 2) return Either.left(`it names an unknown key derivation (${kdfByte})`)
  if (kdfByte === 2 && (logN < 10 || logN > 22 || r < 1 || r > 32 || p < 1 || p > 16)) {
    return Either.left("its scrypt parameters are out of range")
  }
  const header: Header = {
    kdf: kdfByte === 1 ? "keyFile" : "scrypt",
    logN,
    r,
    p,
    salt: new Uint8Array(data.subarray(HEADER_BYTES - 2 * SALT_BYTES, HEADER_BYTES - SALT_BYTES))
  }
  let offset = HEADER_BYTES
  const take = (length: number): Buffer | undefined => {
    if (offset + length > body.length) return undefined
    const slice = body.subarray(offset, offset + length)
    offset += length
    return slice
  }
  const verifier: Sealed = {
    nonce: take(NONCE_BYTES)!,
    ciphertext: take(VERIFIER_PLAINTEXT.length)!,
    tag: take(TAG_BYTES)!
  }
  const count = take(4)!.readUInt32BE()
  const entries: Array<{ index: Uint8Array; sealed: Sealed }> = []
  for (let i = 0; i < count; i++) {
    const index = take(INDEX_BYTES)
    const nonce = take(NONCE_BYTES)
    const length = take(4)?.readUInt32BE()
    const ciphertext = length === undefined ? undefined : take(length)
    const tag = take(TAG_BYTES)
    if (!index || !nonce || !ciphertext || !tag) return Either.left(`entry ${i + 1} of ${count} is cut short`)
    entries.push({ index, sealed: { nonce, ciphertext, tag } })
  }
  if (offset !== body.length) return Either.left("it has unexpected bytes after the last entry")
  return Either.right({
    header,
    fileSalt: new Uint8Array(data.subarray(HEADER_BYTES - SALT_BYTES, HEADER_BYTES)),
    headerBytes: body.subarray(0, HEADER_BYTES),
    verifier,
    entries
  })
}

/** Opens a parsed file: a verifier that fails is a wrong key; an entry that fails is corruption. */
export const openFile = (
  file: ParsedFile,
  master: Uint8Array
): Either.Either<Map<string, Redacted.Redacted<string>>, FormatProblem> => {
  const keys = subkeys(master, file.fileSalt)
  if (open(keys.encryption, file.verifier, file.headerBytes) === undefined) return Either.left({ _tag: "WrongKey" })
  const entries = new Map<string, Redacted.Redacted<string>>()
  for (const [i, { index, sealed }] of file.entries.entries()) {
    const plaintext = open(keys.encryption, sealed, Buffer.concat([file.headerBytes, index]))
    if (plaintext === undefined || plaintext.length < 4) {
      return Either.left(corrupt(`entry ${i + 1} does not authenticate (it was modified)`))
    }
    const buffer = Buffer.from(plaintext)
    const nameLength = buffer.readUInt32BE()
    if (4 + nameLength > buffer.length) return Either.left(corrupt(`entry ${i + 1} is malformed`))
    const name = buffer.subarray(4, 4 + nameLength).toString("utf8")
    if (!indexOf(keys, name).equals(index) || entries.has(name)) {
      return Either.left(corrupt(`entry ${i + 1} does not match its index (it was modified)`))
    }
    entries.set(name, Redacted.make(buffer.subarray(4 + nameLength).toString("utf8")))
  }
  return Either.right(entries)
}
