/**
 * `LanguageModel.ResponseLimits` resolved to numbers, and the one error for an answer past them.
 * Each provider enforces the bounds where it reads bodies; the wording of the failure, which
 * says which bound was crossed and how to raise it, lives here.
 */
import { ProviderError } from "../../domain/Errors.js"
import type { ResponseLimits } from "../LanguageModel.js"

/** The bounds a provider applies, each in bytes. */
export interface Limits {
  readonly maxResponseBytes: number
  readonly maxErrorBodyBytes: number
  readonly maxEventBytes: number
}

const KiB = 1024
const MiB = 1024 * KiB

/** The defaults: far above any answer a model gives, far below what would hurt the process. */
export const defaultLimits: Limits = { maxResponseBytes: 8 * MiB, maxErrorBodyBytes: 64 * KiB, maxEventBytes: MiB }

const bound = (value: number | undefined, fallback: number): number =>
  value === undefined || Number.isNaN(value) ? fallback : Math.max(1, Math.floor(value))

/** The bounds asked for, the defaults for the rest. */
export const limitsOf = (limits: ResponseLimits | undefined): Limits =>
  limits === undefined ? defaultLimits : {
    maxResponseBytes: bound(limits.maxResponseBytes, defaultLimits.maxResponseBytes),
    maxErrorBodyBytes: bound(limits.maxErrorBodyBytes, defaultLimits.maxErrorBodyBytes),
    maxEventBytes: bound(limits.maxEventBytes, defaultLimits.maxEventBytes)
  }

/** `8 MiB`, `64 KiB`, `300 bytes`. */
export const formatBytes = (bytes: number): string => {
  const [unit, size] = bytes >= MiB ? ["MiB", MiB] : bytes >= KiB ? ["KiB", KiB] : ["bytes", 1]
  return `${Number((bytes / size).toFixed(1))} ${unit}`
}

/**
 * An answer past one of the bounds. Not retryable: the same request is likely to get the same
 * answer, and reading it again costs as much again.
 */
export const responseTooLarge = (
  providerId: string,
  what: string,
  limit: "maxResponseBytes" | "maxEventBytes",
  bytes: number
): ProviderError =>
  new ProviderError({
    reason: "InvalidResponse",
    providerId,
    retryable: false,
    message: `Provider "${providerId}" sent ${what} larger than the limit of ${formatBytes(bytes)} ` +
      `(${limit}); the rest was not read. If such answers are expected, raise limits.${limit} ` +
      `in the provider's options (now ${bytes}).`
  })
