/**
 * Watches an Ollama NDJSON body on its way to the AI SDK provider: an `{"error": ...}` line (Ollama's
 * mid-stream failure), a lost connection, or an end without the final `"done": true` line is reported
 * through `onFailure`, so the client gets an error instead of a silently truncated answer (the provider
 * itself drops error lines). The body is then closed, not errored: erroring a stream discards what its
 * readers have queued, and the lines before the failure must still reach the client, in order.
 */

/** Ollama failed after the response had started (an error line, or the stream ended early). */
export class UpstreamStreamError extends Error {
  readonly code = 'UPSTREAM_STREAM_ERROR'
  constructor(message: string) {
    super(message)
    this.name = 'UpstreamStreamError'
  }
}

const NEWLINE = 10
// `{"error"` as bytes: Ollama writes error lines with Go's encoding/json, without spaces.
const ERROR_PREFIX = new TextEncoder().encode('{"error"')

const startsWithAt = (bytes: Uint8Array, at: number, prefix: Uint8Array) => {
  if (bytes.length - at < prefix.length) return false
  for (let i = 0; i < prefix.length; i++) if (bytes[at + i] !== prefix[i]) return false
  return true
}

const concat = (a: Uint8Array, b: Uint8Array) => {
  const out = new Uint8Array(a.length + b.length)
  out.set(a, 0)
  out.set(b, a.length)
  return out
}

const errorMessageOf = (line: Uint8Array) => {
  try {
    const parsed = JSON.parse(new TextDecoder().decode(line)) as { error?: unknown }
    const e = parsed.error
    if (typeof e === 'string') return e
    if (e && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string') return (e as { message: string }).message
  } catch {
    // fall through to the generic message
  }
  return 'Ollama reported an error'
}

const isDoneLine = (line: Uint8Array | undefined) => {
  if (!line) return false
  try {
    return (JSON.parse(new TextDecoder().decode(line)) as { done?: unknown }).done === true
  } catch {
    return false
  }
}

export interface GuardHooks {
  /** The first body bytes arrived. */
  onFirstByte?(): void
  /** Ollama failed after the head: called once, before the body closes. */
  onFailure?(error: UpstreamStreamError): void
  /** The body ended, failed or was cancelled: called exactly once. */
  onEnd?(outcome: 'done' | 'error' | 'cancel'): void
}

/**
 * Returns a stream that passes `body` through unchanged, byte for byte, up to a failure (an error line,
 * a lost connection, a missing final line), which it reports and then closes the stream. Only line
 * starts are inspected, without decoding, so the cost per chunk is a scan for newlines.
 */
export const guardNdjson = (body: ReadableStream<Uint8Array>, hooks: GuardHooks = {}): ReadableStream<Uint8Array> => {
  const reader = body.getReader()
  let carry: Uint8Array = new Uint8Array(0)
  let lastLine: Uint8Array | undefined
  let first = true
  let ended = false
  let closed = false
  const fail = (controller: ReadableStreamDefaultController<Uint8Array>, error: UpstreamStreamError) => {
    end('error')
    hooks.onFailure?.(error)
    closed = true
    controller.close()
  }
  const end = (outcome: 'done' | 'error' | 'cancel') => {
    if (ended) return
    ended = true
    hooks.onEnd?.(outcome)
  }

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (closed) return
      let chunk: ReadableStreamReadResult<Uint8Array>
      try {
        chunk = await reader.read()
      } catch (err) {
        // A cancelled request stays an abort; anything else is Ollama's connection failing mid-answer.
        if (err instanceof Error && err.name === 'AbortError') {
          end('error')
          throw err
        }
        fail(controller, new UpstreamStreamError('the connection to Ollama was lost mid-answer'))
        return
      }
      if (chunk.done) {
        const tail = carry.length > 0 ? carry : undefined
        if (tail && startsWithAt(tail, 0, ERROR_PREFIX)) return fail(controller, new UpstreamStreamError(errorMessageOf(tail)))
        if (!isDoneLine(tail ?? lastLine)) return fail(controller, new UpstreamStreamError('Ollama ended the stream before it finished'))
        end('done')
        controller.close()
        return
      }
      if (first) {
        first = false
        hooks.onFirstByte?.()
      }
      const carried = carry.length
      const bytes = carried > 0 ? concat(carry, chunk.value) : chunk.value
      let lineStart = 0
      for (let i = 0; i < bytes.length; i++) {
        if (bytes[i] !== NEWLINE) continue
        if (i > lineStart) {
          if (startsWithAt(bytes, lineStart, ERROR_PREFIX)) {
            const error = new UpstreamStreamError(errorMessageOf(bytes.subarray(lineStart, i)))
            await reader.cancel().catch(() => undefined)
            // The lines before the error line still go out.
            const good = lineStart - carried
            if (good > 0) controller.enqueue(chunk.value.subarray(0, good))
            return fail(controller, error)
          }
          lastLine = bytes.subarray(lineStart, i)
        }
        lineStart = i + 1
      }
      carry = lineStart < bytes.length ? bytes.slice(lineStart) : new Uint8Array(0)
      controller.enqueue(chunk.value)
    },
    async cancel(reason) {
      end('cancel')
      await reader.cancel(reason).catch(() => undefined)
    },
  })
}
