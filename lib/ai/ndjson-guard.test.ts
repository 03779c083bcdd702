/** The NDJSON guard: passes Ollama's lines through untouched and reports an error line, a lost connection or an early end. */
import { describe, expect, it } from 'vitest'
import { UpstreamStreamError, guardNdjson } from './ndjson-guard.ts'

const enc = new TextEncoder()
// One chunk per read, as a socket delivers them; then the end, or a failure.
const streamOf = (chunks: string[], failAtEnd = false) => {
  let i = 0
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (i < chunks.length) c.enqueue(enc.encode(chunks[i++]!))
      else if (failAtEnd) c.error(new TypeError('terminated'))
      else c.close()
    },
  })
}

const run = async (chunks: string[], failAtEnd = false) => {
  const failures: UpstreamStreamError[] = []
  const ends: string[] = []
  let firstByte = 0
  const out = guardNdjson(streamOf(chunks, failAtEnd), {
    onFailure: (e) => failures.push(e),
    onEnd: (o) => ends.push(o),
    onFirstByte: () => firstByte++,
  })
  const text = await new Response(out).text()
  return { text, failures, ends, firstByte }
}

const line = (o: unknown) => JSON.stringify(o) + '\n'
const delta = (s: string) => line({ model: 'm', created_at: 't', message: { role: 'assistant', content: s }, done: false })
const done = line({ model: 'm', created_at: 't', message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop' })

describe('guardNdjson', () => {
  it('passes a complete stream through byte for byte', async () => {
    const chunks = [delta('a'), delta('b').slice(0, 10), delta('b').slice(10) + done]
    const r = await run(chunks)
    expect(r.text).toBe(chunks.join(''))
    expect(r.failures).toEqual([])
    expect(r.ends).toEqual(['done'])
    expect(r.firstByte).toBe(1)
  })

  it('reports an error line, after passing on the lines before it in the same chunk', async () => {
    const r = await run([delta('a'), delta('b') + '{"error":"CUDA out of memory"}\n'])
    expect(r.text).toBe(delta('a') + delta('b'))
    expect(r.failures.map((e) => e.message)).toEqual(['CUDA out of memory'])
    expect(r.ends).toEqual(['error'])
  })

  it('reports an error line split across chunks, or without a final newline', async () => {
    expect((await run([delta('a'), '{"err', 'or":"boom"}\n'])).failures.map((e) => e.message)).toEqual(['boom'])
    expect((await run([delta('a'), '{"error":"tail"}'])).failures.map((e) => e.message)).toEqual(['tail'])
  })

  it('reports a stream that ends without its done line, or whose connection drops', async () => {
    expect((await run([delta('a'), delta('b')])).failures[0]!.message).toMatch(/ended the stream before it finished/)
    const dropped = await run([delta('a')], true)
    expect(dropped.text).toBe(delta('a'))
    expect(dropped.failures[0]!.message).toMatch(/connection to Ollama was lost/)
  })

  it('does not mistake content that mentions "error" for an error line', async () => {
    const r = await run([delta('{"error": is just text'), done])
    expect(r.failures).toEqual([])
  })
})
