/**
 * The Redis Cluster slot of a key (CRC16-XMODEM of the key, or of its hash tag, mod 16384), so that a
 * multi-key read can be split into one MGET per slot. Computed here rather than borrowed from
 * ioredis's own dependency: this package must not reach into an optional peer's dependencies.
 */

export const SLOT_COUNT = 16384

const CRC16_TABLE = buildCrc16Table()

function buildCrc16Table (): Uint16Array {
  const table = new Uint16Array(256)
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8
    for (let bit = 0; bit < 8; bit++) crc = (crc & 0x8000) !== 0 ? (crc << 1) ^ 0x1021 : crc << 1
    table[byte] = crc & 0xffff
  }
  return table
}

export function crc16 (bytes: Uint8Array): number {
  let crc = 0
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff]!
  return crc
}

/**
 * Redis's rule: when the key has a `{` and, after it, a `}` with something between them, only that
 * something is hashed; `{}` (nothing between) leaves the whole key hashed. Redis hashes bytes:
 * `{` and `}` never occur inside a multi-byte UTF-8 sequence, so finding them in the string is the same.
 */
export function keySlot (key: string): number {
  let hashed = key
  const open = key.indexOf('{')
  if (open !== -1) {
    const close = key.indexOf('}', open + 1)
    if (close > open + 1) hashed = key.slice(open + 1, close)
  }
  return crc16(Buffer.from(hashed, 'utf8')) % SLOT_COUNT
}

/**
 * The positions of `keys`, grouped by slot (groups in order of first appearance, positions in order):
 * a Cluster answers an MGET only when all its keys share a slot, so a read of several users' keys
 * sends one MGET per group, in parallel, and puts each answer back at its position.
 */
export function groupBySlot (keys: readonly string[]): number[][] {
  const groups = new Map<number, number[]>()
  keys.forEach((key, position) => {
    const slot = keySlot(key)
    const group = groups.get(slot)
    if (group === undefined) groups.set(slot, [position])
    else group.push(position)
  })
  return [...groups.values()]
}
