/**
 * Reads an upload body in parts of an exact size: a Buffer as it is, a stream or async iterable
 * chunk by chunk, so that only the parts being sent are in memory.
 */
export type UploadBody = Buffer | Uint8Array | AsyncIterable<Uint8Array | string>

export class PartReader {
  readonly #source: AsyncIterator<Uint8Array | string> | undefined
  #pending: Buffer[] = []
  #pendingBytes = 0
  #ended = false
  /** Bytes handed out so far. */
  consumed = 0

  constructor (body: UploadBody) {
    if (Buffer.isBuffer(body) || body instanceof Uint8Array) {
      const whole = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength)
      this.#pending = whole.length === 0 ? [] : [whole]
      this.#pendingBytes = whole.length
      this.#ended = true
    } else {
      this.#source = body[Symbol.asyncIterator]()
    }
  }

  /** Exactly `size` bytes, or fewer when the body ends first. */
  async read (size: number): Promise<Buffer> {
    while (this.#pendingBytes < size && !this.#ended) await this.#pull()
    const whole = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending)
    const part = whole.subarray(0, Math.min(size, whole.length))
    const rest = whole.subarray(part.length)
    this.#pending = rest.length === 0 ? [] : [rest]
    this.#pendingBytes = rest.length
    this.consumed += part.length
    return part
  }

  /** True when nothing is left (it reads ahead one chunk to know). */
  async atEnd (): Promise<boolean> {
    while (this.#pendingBytes === 0 && !this.#ended) await this.#pull()
    return this.#pendingBytes === 0
  }

  /** Stops reading a stream given up on (frees the file handle or socket behind it). */
  async close (): Promise<void> {
    this.#ended = true
    this.#pending = []
    await this.#source?.return?.()
  }

  async #pull (): Promise<void> {
    const next = await this.#source!.next()
    if (next.done === true) {
      this.#ended = true
      return
    }
    const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength)
    if (chunk.length === 0) return
    this.#pending.push(chunk)
    this.#pendingBytes += chunk.length
  }
}
