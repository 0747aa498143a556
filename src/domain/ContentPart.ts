/**
 * The parts a message's content may be made of: text, and images by URL or as base64 bytes.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * The media types an image part may carry as base64 `data`.
 *
 * @since 0.1.0
 */
export const ImageMediaType = Schema.Literal("image/png", "image/jpeg", "image/gif", "image/webp")
export type ImageMediaType = typeof ImageMediaType.Type

/** A piece of a message's text. @since 0.1.0 */
export const TextPart = Schema.Struct({ type: Schema.Literal("text"), text: Schema.String })
export type TextPart = typeof TextPart.Type

const imageUrl = Schema.String.pipe(Schema.filter((url) => {
  if (!URL.canParse(url)) return `An image url must be a URL; got "${url.length > 80 ? `${url.slice(0, 80)}…` : url}".`
  const protocol = new URL(url).protocol
  return protocol === "https:" || protocol === "http:" || protocol === "data:"
    ? true
    : `An image url must be an http(s) or data: URL, not ${protocol}; pass an image's bytes as { type: "image", data, mediaType }.`
}))

// Standard base64 (RFC 4648 §4), padding optional; a data: URL or URL-safe base64 is refused.
const base64 = /^[A-Za-z0-9+/]+={0,2}$/

const imageData = Schema.String.pipe(Schema.filter((data) =>
  base64.test(data) ||
  (data.startsWith("data:")
    ? "Image data must be the base64 bytes alone; pass a data: URL as { type: \"image\", url } instead."
    : "Image data must be non-empty standard base64 (A-Z, a-z, 0-9, +, /, = padding).")
))

/**
 * An image the model should see, by URL (`http(s):` or `data:`): providers that fetch images
 * themselves (OpenAI-compatible ones) take it; Bedrock does not (pass `data` there).
 *
 * @since 0.1.0
 */
export const ImageUrlPart = Schema.Struct({ type: Schema.Literal("image"), url: imageUrl })
export type ImageUrlPart = typeof ImageUrlPart.Type

/** An image the model should see, as base64 bytes with their media type. @since 0.1.0 */
export const ImageDataPart = Schema.Struct({ type: Schema.Literal("image"), data: imageData, mediaType: ImageMediaType })
export type ImageDataPart = typeof ImageDataPart.Type

/** An image part, by URL or by bytes. @since 0.1.0 */
export const ImagePart = Schema.Union(ImageUrlPart, ImageDataPart)
export type ImagePart = typeof ImagePart.Type

/** One part of a message's content. @since 0.1.0 */
export const ContentPart = Schema.Union(TextPart, ImageUrlPart, ImageDataPart)
export type ContentPart = typeof ContentPart.Type

/**
 * A message's content: a string, or parts (text and images) in the order the model reads them.
 *
 * @since 0.1.0
 */
export const Content = Schema.Union(Schema.String, Schema.Array(ContentPart))
export type Content = typeof Content.Type
