/**
 * The load generator of bench/gateway.ts, in a process of its own (as are the host and the Ollama
 * double), so each has its own event loop. Driven over IPC: it sends `{ready}` at start, then answers
 * each `{run}` with the timings.
 */
import http from 'node:http'

export interface RunSpec {
  url: string
  body: string
  headers: Record<string, string>
  stream: boolean
  concurrency: number
  count: number
  /** Stop after this long even if `count` is not reached. */
  capMs: number
  /** Alternate streamed and whole requests (the memory phase). */
  mixed?: boolean
}

export type ToLoad = { run: RunSpec; id: number } | { stop: true }
export type FromLoad = { ready: true } | { id: number; times: number[]; seconds: number; errors: number }

// node:http with keep-alive, not fetch: undici's fetch costs ~3x the CPU per request, and on two cores the
// load generator's CPU is taken from the host and the double under test (bench/cortex.ts does the same).
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 })

/** One request; ms to the end of the answer (whole) or to its first body byte (stream). */
const once = (spec: RunSpec, stream: boolean): Promise<number> =>
  new Promise((resolve, reject) => {
    const t0 = performance.now()
    const body = stream === spec.stream ? spec.body : spec.body.replace(/"stream":(true|false)/, `"stream":${stream}`)
    const req = http.request(
      spec.url,
      { method: 'POST', agent, headers: { ...spec.headers, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let first = 0
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => {
          if (!first) first = performance.now()
          chunks.push(c)
        })
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`answered ${res.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 200)}`))
          else resolve((stream ? first : performance.now()) - t0)
        })
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(body)
  })

const run = async (spec: RunSpec) => {
  const times: number[] = []
  let errors = 0
  let issued = 0
  const t0 = performance.now()
  const deadline = t0 + spec.capMs
  await Promise.all(
    Array.from({ length: spec.concurrency }, async () => {
      while (issued < spec.count && performance.now() < deadline) {
        const stream = spec.mixed ? issued % 2 === 1 : spec.stream
        issued++
        try {
          const t = await once(spec, stream)
          if (!spec.mixed) times.push(t)
        } catch {
          errors++
        }
      }
    }),
  )
  return { times, seconds: (performance.now() - t0) / 1000, errors }
}

const send = (m: FromLoad) => process.send!(m)
process.on('message', async (m: ToLoad) => {
  if ('stop' in m) process.exit(0)
  send({ id: m.id, ...(await run(m.run)) })
})
send({ ready: true })
