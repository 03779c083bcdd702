/** Runs the Bus contract against every driver: memory, Upstash over the REST server, and with REDIS_URL real Redis. */
import { randomUUID } from 'node:crypto'
import Redis from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import { startBusRestServer, type BusRestBackend, type BusRestServer } from '../../local-runtime/bus-rest-server.ts'
import { busContract } from './bus.contract.ts'
import { createMemoryBus } from './memory.ts'
import { createRedisBus } from './redis.ts'
import { createUpstashBus, readSse } from './upstash.ts'

const redisUrl = process.env.REDIS_URL
const uniquePrefix = () => `nexus-test:${randomUUID()}:`

/** Starts a REST server on first use; stops it after the enclosing suite. */
const lazyServer = (backend: BusRestBackend) => {
  let started: Promise<BusRestServer> | undefined
  afterAll(async () => {
    if (started) await (await started).close()
  })
  return () => (started ??= startBusRestServer({ backend }))
}

/** Deletes what a test left in the shared Redis under its prefix. */
const dropPrefix = async (url: string, prefix: string) => {
  const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    let cursor = '0'
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      if (keys.length > 0) await admin.del(...keys)
      cursor = next
    } while (cursor !== '0')
  } finally {
    admin.disconnect()
  }
}

busContract('memory bus', async () => ({ bus: createMemoryBus() }))

describe('Upstash driver over the REST server', () => {
  const server = lazyServer({ kind: 'memory' })
  busContract('memory backend', async () => {
    const { url, token } = await server()
    return { bus: createUpstashBus({ url, token, prefix: uniquePrefix() }) }
  })
})

describe.skipIf(!redisUrl)('with REDIS_URL', () => {
  const url = redisUrl as string
  busContract(
    'ioredis bus',
    async () => {
      const prefix = uniquePrefix()
      return { bus: createRedisBus({ url, prefix }), cleanup: () => dropPrefix(url, prefix) }
    },
  )

  describe('Upstash driver over the REST server', () => {
    const server = lazyServer({ kind: 'redis', url })
    busContract('redis backend', async () => {
      const { url: restUrl, token } = await server()
      const prefix = uniquePrefix()
      return { bus: createUpstashBus({ url: restUrl, token, prefix }), cleanup: () => dropPrefix(url, prefix) }
    })
  })
})

describe('Upstash driver failures', () => {
  it('fails fast when the REST server is down', async () => {
    const down = await startBusRestServer({ backend: { kind: 'memory' } })
    await down.close()
    const bus = createUpstashBus({ url: down.url, token: down.token })
    const started = Date.now()
    await expect(bus.get('k')).rejects.toThrow()
    await expect(bus.subscribe(['ch'], () => undefined)).rejects.toThrow()
    expect(Date.now() - started).toBeLessThan(3_000)
  })

  it('rejects a wrong token without echoing the command or its values', async () => {
    const server = await startBusRestServer({ backend: { kind: 'memory' } })
    try {
      const bus = createUpstashBus({ url: server.url, token: 'wrong-token' })
      const err = await bus.set('k', 'secret-value').catch((e: unknown) => e)
      expect(err).toBeInstanceOf(Error)
      expect((err as Error).message).toContain('Unauthorized')
      expect((err as Error).message).not.toContain('secret-value')
      await expect(bus.subscribe(['ch'], () => undefined)).rejects.toThrow(/401/)
    } finally {
      await server.close()
    }
  })

  it('resubscribes after the stream drops', async () => {
    const server = await startBusRestServer({ backend: { kind: 'memory' } })
    // Same port, new process state: the driver must find its way back to the channel.
    const port = Number(new URL(server.url).port)
    const bus = createUpstashBus({ url: server.url, token: server.token })
    const got: string[] = []
    const sub = await bus.subscribe(['ch'], (_channel, message) => got.push(message))
    await server.close()
    const again = await startBusRestServer({ backend: { kind: 'memory' }, token: server.token, port })
    try {
      const until = Date.now() + 5_000
      while ((await bus.publish('ch', 'back')) === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50))
      await expect.poll(() => got, { timeout: 2_000 }).toContain('back')
      await sub.close()
    } finally {
      await bus.close()
      await again.close()
    }
  })
})

describe('readSse', () => {
  const stream = (...chunks: (string | Uint8Array)[]) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (const c of chunks) controller.enqueue(typeof c === 'string' ? new TextEncoder().encode(c) : c)
        controller.close()
      },
    })
  const collect = async (body: ReadableStream<Uint8Array>) => {
    const out: string[] = []
    for await (const data of readSse(body)) out.push(data)
    return out
  }

  it('joins data lines, accepts CRLF, CR and LF even when split across chunks, ignores other fields', async () => {
    const events = await collect(
      stream('data: a\r', '\ndata: b\r\n\r', '\n: comment\nevent: x\nid: 1\ndata:c\rdata\r\r', 'data: d\n', '\n'),
    )
    expect(events).toEqual(['a\nb', 'c\n', 'd'])
  })

  it('decodes a multi-byte character split across chunks and drops an unfinished event', async () => {
    const bytes = new TextEncoder().encode('data: 🚀\n\n')
    expect(await collect(stream(bytes.slice(0, 8), bytes.slice(8), 'data: unfinished\n'))).toEqual(['🚀'])
  })
})
