/**
 * Server-sent events for the gateway: frames come from an `async function*`, are pulled one at a time
 * into a ReadableStream (so a slow client slows the upstream, with no buffer in between), and a client
 * that goes away cancels the generator and, through `onCancel`, the upstream request.
 */

const encoder = new TextEncoder()

/** One SSE `data:` frame holding JSON. */
export const sseData = (value: unknown): string => `data: ${JSON.stringify(value)}\n\n`

/**
 * An SSE comment, which every SSE parser skips. Sent while the model is silent: it keeps proxies from
 * timing the stream out, and lets workerd notice a client that went away (it only does when it writes).
 */
export const SSE_KEEPALIVE = ': keep-alive\n\n'
export const KEEPALIVE_MS = 2_000

/** Awaits `next`, or resolves to `undefined` after `ms` if it is still pending (the timer is always cleared). */
export const withinKeepalive = async <T>(next: Promise<T>, ms = KEEPALIVE_MS): Promise<T | undefined> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([next, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)))])
  } finally {
    clearTimeout(timer)
  }
}

/** The OpenAI stream terminator. */
export const SSE_DONE = 'data: [DONE]\n\n'

/** Headers of an SSE response: text/event-stream also keeps workerd from compressing it into one piece. */
export const SSE_HEADERS: Record<string, string> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  // Reverse proxies (nginx) otherwise buffer the stream.
  'x-accel-buffering': 'no',
}

/**
 * A byte stream of the frames `frames` yields. `onCancel` runs once when the consumer cancels (the
 * client disconnected) before the generator finished; the generator is then closed.
 */
export const sseStream = (frames: AsyncGenerator<string, void, void>, onCancel: (reason: unknown) => void): ReadableStream<Uint8Array> => {
  let finished = false
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let next: IteratorResult<string, void>
        try {
          next = await frames.next()
        } catch (err) {
          finished = true
          controller.error(err)
          return
        }
        if (next.done) {
          finished = true
          controller.close()
          return
        }
        controller.enqueue(encoder.encode(next.value))
      },
      async cancel(reason) {
        if (finished) return
        finished = true
        onCancel(reason)
        await frames.return(undefined).catch(() => undefined)
      },
    },
    // One frame at a time: the next is produced only when the previous has been taken.
    { highWaterMark: 0 },
  )
}
