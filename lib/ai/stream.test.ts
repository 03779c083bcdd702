/** The SSE encoder: frames pulled one at a time, and a cancelled stream cancels its producer. */
import { describe, expect, it } from 'vitest'
import { SSE_DONE, sseData, sseStream, withinKeepalive } from './stream.ts'

describe('sseStream', () => {
  it('writes the generator\'s frames in order', async () => {
    async function* frames() {
      yield sseData({ a: 1 })
      yield SSE_DONE
    }
    expect(await new Response(sseStream(frames(), () => undefined)).text()).toBe('data: {"a":1}\n\ndata: [DONE]\n\n')
  })

  it('calls onCancel and closes the generator when the reader cancels', async () => {
    let cancelled: unknown
    let closed = false
    async function* frames() {
      try {
        for (let i = 0; ; i++) yield sseData({ i })
      } finally {
        closed = true
      }
    }
    const reader = sseStream(frames(), (reason) => (cancelled = reason)).getReader()
    await reader.read()
    await reader.cancel('client left')
    expect(cancelled).toBe('client left')
    expect(closed).toBe(true)
  })
})

describe('withinKeepalive', () => {
  it('returns the value when it comes in time, and undefined (timer cleared) when it does not', async () => {
    expect(await withinKeepalive(Promise.resolve(7), 1000)).toBe(7)
    const slow = new Promise((r) => setTimeout(() => r(1), 200))
    expect(await withinKeepalive(slow, 10)).toBeUndefined()
  })
})
