/** The PGlite wire server under concurrency: no interleaving inside a query or a transaction. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import postgres from 'postgres'
import { startEmbeddedPostgres, type EmbeddedPostgres } from './pglite.ts'

let embedded: EmbeddedPostgres
beforeAll(async () => {
  embedded = await startEmbeddedPostgres('memory://')
})
afterAll(async () => {
  await embedded.close()
})

describe('PGlite wire server', () => {
  it('keeps concurrent pipelined queries from several clients apart', async () => {
    const clients = [1, 2, 3].map(() => postgres(embedded.url, { max: 4, onnotice: () => undefined }))
    await clients[0]!`create table t1 (k text primary key, v int)`
    const codes: string[] = []
    await Promise.all(
      clients.flatMap((sql, c) =>
        Array.from({ length: 60 }, async (_, i) => {
          await sql`insert into t1 values (${`k${c}-${i}`}, ${i})`
          await sql`insert into t1 values (${`k${c}-${i}`}, ${i})`.catch((err) => codes.push(err.code))
          const [row] = await sql`select v from t1 where k = ${`k${c}-${i}`}`
          expect(row!.v).toBe(i)
        }),
      ),
    )
    expect(codes).toHaveLength(180)
    expect(new Set(codes)).toEqual(new Set(['23505'])) // unique violations only, no protocol errors
    await Promise.all(clients.map((c) => c.end()))
  })

  it('gives a transaction the session until it ends, so others never see or join it half-done', async () => {
    const a = postgres(embedded.url, { max: 2, onnotice: () => undefined })
    const b = postgres(embedded.url, { max: 2, onnotice: () => undefined })
    await a`create table t2 (n int)`
    const seen: number[] = []
    await Promise.all([
      ...Array.from({ length: 20 }, () =>
        a.begin(async (tx) => {
          await tx`insert into t2 values (1)`
          await tx`insert into t2 values (1)`
        }),
      ),
      ...Array.from({ length: 20 }, async () => {
        const [r] = await b`select count(*)::int as n from t2`
        seen.push(r!.n)
      }),
    ])
    expect(seen.every((n) => n % 2 === 0)).toBe(true)
    const [r] = await b`select count(*)::int as n from t2`
    expect(r!.n).toBe(40)
    await a.end()
    await b.end()
  })

  it('rolls back the transaction of a client that disconnects inside it', async () => {
    const a = postgres(embedded.url, { max: 1, onnotice: () => undefined })
    const b = postgres(embedded.url, { max: 1, onnotice: () => undefined })
    await b`create table t3 (n int)`
    const tx = a.begin(async (sql) => {
      await sql`insert into t3 values (1)`
      await new Promise(() => undefined) // never commits
    })
    tx.catch(() => undefined)
    await new Promise((r) => setTimeout(r, 100))
    await a.end({ timeout: 0 })
    const [r] = await b`select count(*)::int as n from t3`
    expect(r!.n).toBe(0)
    await b.end()
  })
})

/** Raw wire-protocol messages, to send exactly what a driver sends, in the order a test needs. */
const message = (type: string, ...parts: Buffer[]) => {
  const body = Buffer.concat(parts)
  const head = Buffer.alloc(5)
  head.write(type, 0)
  head.writeInt32BE(4 + body.length, 1)
  return Buffer.concat([head, body])
}
const cstr = (s: string) => Buffer.from(`${s}\0`)
const int16 = (n: number) => {
  const b = Buffer.alloc(2)
  b.writeInt16BE(n)
  return b
}
const int32 = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeInt32BE(n)
  return b
}

/** A raw client: sends buffers, collects the backend's message types and data rows. */
const rawClient = async (port: number) => {
  const { connect } = await import('node:net')
  const socket = connect(port, '127.0.0.1')
  await new Promise((r) => socket.once('connect', r))
  let buffer = Buffer.alloc(0)
  const received: Array<{ type: string; body: Buffer }> = []
  const waiters: Array<() => void> = []
  socket.on('data', (d) => {
    buffer = Buffer.concat([buffer, d])
    while (buffer.length >= 5 && buffer.length >= 1 + buffer.readInt32BE(1)) {
      const len = 1 + buffer.readInt32BE(1)
      received.push({ type: String.fromCharCode(buffer[0]!), body: buffer.subarray(5, len) })
      buffer = buffer.subarray(len)
    }
    for (const w of waiters.splice(0)) w()
  })
  const until = async (type: string, after = 0) => {
    for (;;) {
      const i = received.findIndex((m, k) => k >= after && m.type === type)
      if (i >= 0) return i
      await new Promise<void>((r) => waiters.push(r))
    }
  }
  const startup = Buffer.concat([int32(196608), cstr('user'), cstr('postgres'), cstr('database'), cstr('postgres'), Buffer.from([0])])
  socket.write(Buffer.concat([int32(4 + startup.length), startup]))
  await until('Z')
  return { socket, received, until }
}

describe('PGlite wire server: a Flush mid-exchange', () => {
  it("keeps a client's unnamed statement and error state its own until it syncs (postgres.js describes first)", async () => {
    const a = await rawClient(Number(new URL(embedded.url).port))
    const b = await rawClient(Number(new URL(embedded.url).port))
    const mark = a.received.length
    // a: Parse + Describe + Flush, as postgres.js sends a parameterised query it has not seen before.
    a.socket.write(
      Buffer.concat([
        message('P', cstr(''), cstr('select $1::int + 1 as v'), int16(0)),
        message('D', Buffer.from('S'), cstr('')),
        message('H'),
      ]),
    )
    await a.until('T', mark)
    // b meanwhile: a statement of its own, which would replace a's unnamed statement.
    const bMark = b.received.length
    b.socket.write(Buffer.concat([message('P', cstr(''), cstr("select 'b' as w"), int16(0)), message('B', cstr(''), cstr(''), int16(0), int16(0), int16(0)), message('E', cstr(''), int32(0)), message('S')]))
    await new Promise((r) => setTimeout(r, 100))
    expect(b.received.slice(bMark).map((m) => m.type)).toEqual([]) // b waits for a's Sync
    // a: Bind + Execute + Sync on its unnamed statement.
    a.socket.write(
      Buffer.concat([
        message('B', cstr(''), cstr(''), int16(0), int16(1), int32(2), Buffer.from('41'), int16(0)),
        message('E', cstr(''), int32(0)),
        message('S'),
      ]),
    )
    const z = await a.until('Z', mark)
    const types = a.received.slice(mark, z + 1).map((m) => m.type)
    expect(types).not.toContain('E')
    const row = a.received.slice(mark).find((m) => m.type === 'D')!
    expect(row.body.subarray(6).toString()).toBe('42')
    await b.until('Z', bMark)
    expect(b.received.slice(bMark).map((m) => m.type)).not.toContain('E')
    expect(b.received.slice(bMark).find((m) => m.type === 'D')!.body.subarray(6).toString()).toBe('b')
    a.socket.destroy()
    b.socket.destroy()
  })

  it('frees the session when a client leaves between its Flush and its Sync', async () => {
    const a = await rawClient(Number(new URL(embedded.url).port))
    a.socket.write(Buffer.concat([message('P', cstr(''), cstr('select 1'), int16(0)), message('H')]))
    await a.until('1')
    a.socket.destroy()
    const sql = postgres(embedded.url, { max: 1, onnotice: () => undefined })
    const [r] = await sql`select ${5}::int as n`
    expect(r!.n).toBe(5)
    await sql.end()
  })

  it('serves parameterised queries from many clients at once without protocol errors', async () => {
    const clients = [1, 2, 3, 4].map(() => postgres(embedded.url, { max: 3, onnotice: () => undefined }))
    await Promise.all(
      clients.flatMap((sql, c) =>
        Array.from({ length: 50 }, async (_, i) => {
          // unsafe() with parameters: an unnamed statement, described first.
          const [row] = await sql.unsafe(`select $1::int * ${c + 2} as v, $2::text as t`, [i, `c${c}`])
          expect(row).toEqual({ v: i * (c + 2), t: `c${c}` })
        }),
      ),
    )
    await Promise.all(clients.map((c) => c.end()))
  })
})
