/**
 * Checks of what callers pass to the Lightroom client, made before any request: an id that is not
 * 32 lowercase hex digits could smuggle a path into a URL, and Lightroom's own limits are cheaper
 * to enforce here than to learn from a 400.
 */
import { LightroomInputError } from '../errors.js'

/** What `GET .../renditions/{type}` serves; the last two only after generateRenditions(). */
export const RENDITION_TYPES = ['thumbnail2x', '640', '1280', '2048', '2560', 'fullsize'] as const
export type RenditionType = typeof RENDITION_TYPES[number]
/** The types Lightroom makes on request (POST .../renditions). */
export const GENERATED_RENDITION_TYPES = ['fullsize', '2560'] as const
export type GeneratedRenditionType = typeof GENERATED_RENDITION_TYPES[number]

/** Lightroom's page size cap for asset lists. */
export const MAX_PAGE_LIMIT = 500

const ID = /^[0-9a-f]{32}$/
/** Lightroom-style: '2024-03-01T00:00:00', optionally with fractions and a Z. */
const DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z?$/
const SUBTYPE = /^[a-z][a-z_]{0,39}$/

export function checkId (field: string, value: unknown): string {
  if (typeof value !== 'string' || !ID.test(value)) fail(field, 'must be a Lightroom id: 32 lowercase hex digits')
  return value
}

export function checkIds (field: string, value: unknown, max: number): string[] {
  if (!Array.isArray(value)) fail(field, 'must be an array of Lightroom ids')
  if (value.length > max) fail(field, `has ${value.length} ids; at most ${max} are accepted`)
  return value.map((id, index) => checkId(`${field}[${index}]`, id))
}

export function checkRenditionType (field: string, value: unknown): RenditionType {
  if (!(RENDITION_TYPES as readonly unknown[]).includes(value)) fail(field, `must be one of ${RENDITION_TYPES.join(', ')}`)
  return value as RenditionType
}

export function checkGeneratedTypes (field: string, value: unknown): GeneratedRenditionType[] {
  if (!Array.isArray(value) || value.length === 0) fail(field, `must be a non-empty array of ${GENERATED_RENDITION_TYPES.join(', ')}`)
  for (const type of value) {
    if (!(GENERATED_RENDITION_TYPES as readonly unknown[]).includes(type)) fail(field, `may hold only ${GENERATED_RENDITION_TYPES.join(', ')} (Lightroom makes the others itself)`)
  }
  return [...new Set(value as GeneratedRenditionType[])]
}

export function optionalDate (field: string, value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || !DATE.test(value)) fail(field, "must be a Lightroom date string such as '2024-03-01T00:00:00'")
  return value
}

export function optionalLimit (field: string, value: unknown, max = MAX_PAGE_LIMIT): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) fail(field, `must be an integer from 1 to ${max}`)
  return value
}

export function optionalSubtype (field: string, value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || !SUBTYPE.test(value)) fail(field, "must be a Lightroom subtype such as 'project'")
  return value
}

/** Asset subtypes go out semicolon-separated ('image;video'). */
export function optionalSubtypes (field: string, value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value) || value.length === 0) fail(field, "must be a non-empty array such as ['image', 'video']")
  return value.map((subtype, index) => optionalSubtype(`${field}[${index}]`, subtype)).join(';')
}

export function optionalSignal (field: string, value: unknown): AbortSignal | undefined {
  if (value === undefined) return undefined
  if (!(value instanceof AbortSignal)) fail(field, 'must be an AbortSignal')
  return value
}

export function positiveInteger (field: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) fail(field, `must be an integer from ${min} to ${max}`)
  return value
}

export function fail (field: string, message: string, assetId?: string): never {
  throw new LightroomInputError(field, message, { assetId })
}

/** A query string of the defined values, in the order given. */
export function query (params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams()
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined) search.set(name, String(value))
  }
  const text = search.toString()
  return text === '' ? '' : `?${text}`
}
