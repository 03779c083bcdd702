/**
 * Serves one PGlite database over the PostgreSQL wire protocol to many connections, correctly.
 *
 * PGlite is a single backend session. the multiplexer of @electric-sql/pglite-socket (0.2.17) forwards each connection's messages
 * one at a time, so under concurrency one connection's Bind lands between another's Bind and Execute
 * and queries fail with `portal "" does not exist`. Here a connection's messages run as one atomic
 * group up to each Sync (or simple Query), and a connection that leaves a transaction open owns the
 * session until it ends it, so nothing interleaves inside an extended-protocol exchange or a transaction.
 * A connection that flushes without syncing (postgres.js: Parse + Describe + Flush, then Bind + Execute +
 * Sync once it has the types) also keeps the session until its Sync: its unnamed statement would
 * otherwise be replaced by another client's, or another client's messages would run in its error state.
 */
import { createServer, type Server, type Socket } from 'node:net'
import type { PGlite } from '@electric-sql/pglite'

const SSL_REQUEST = 80877103
const CANCEL_REQUEST = 80877102
const PROTOCOL_3 = 196608
const ROLLBACK = (() => {
  const text = Buffer.from('ROLLBACK\0')
  const msg = Buffer.alloc(5 + text.length)
  msg.write('Q', 0)
  msg.writeInt32BE(4 + text.length, 1)
  text.copy(msg, 5)
  return new Uint8Array(msg)
})()
const SYNC = new Uint8Array([0x53, 0, 0, 0, 4])
const FLUSH = 0x48 // 'H'
// Messages after which the backend answers: a group ends here.
const GROUP_END = new Set(['S', 'Q', 'H'])

export interface PgliteServer {
  host: string
  port: number
  close(): Promise<void>
}

interface Connection {
  socket: Socket
  id: number
  /** Its last group ended in Flush, not Sync: it is mid-exchange and keeps the session until it syncs. */
  awaitingSync: boolean
}

/** Starts serving `db` on `host:port` (port 0 = a free port). */
export const servePglite = async (db: PGlite, options: { host?: string; port?: number } = {}): Promise<PgliteServer> => {
  const host = options.host ?? '127.0.0.1'
  let owner: Connection | null = null // holds an open transaction: only its work may run until it ends
  const queue: Array<{ conn: Connection; work: () => Promise<void>; done: (err?: unknown) => void }> = []
  let pumping: Promise<void> | undefined
  let closed = false
  const sockets = new Set<Socket>()
  let nextId = 1

  // One FIFO of work for the single session. The next item is the oldest one that may run: anyone's
  // while no transaction is open, else only the owner's. Checking and running happen in one loop, so
  // nothing can slip in between (a separate "wait, then lock" would let another client run inside the
  // transaction that started meanwhile).
  const next = () => (owner ? queue.findIndex((q) => q.conn === owner) : queue.length ? 0 : -1)
  const pump = (): Promise<void> =>
    (pumping ??= drainQueue().finally(() => {
      pumping = undefined
      // Work scheduled between the loop's last check and here would otherwise wait for the next arrival.
      if (!closed && next() >= 0) void pump()
    }))
  const drainQueue = async () => {
    {
      for (;;) {
        if (closed) {
          for (const q of queue.splice(0)) q.done(new Error('server closed'))
          break
        }
        const i = next()
        if (i < 0) break
        const item = queue.splice(i, 1)[0]!
        try {
          await db.runExclusive(item.work)
          owner = db.isInTransaction() || item.conn.awaitingSync ? item.conn : null
          item.done()
        } catch (err) {
          owner = db.isInTransaction() || item.conn.awaitingSync ? item.conn : null
          item.done(err)
        }
      }
    }
  }
  const schedule = (conn: Connection, work: () => Promise<void>) =>
    new Promise<void>((resolve, reject) => {
      queue.push({ conn, work, done: (err) => (err ? reject(err) : resolve()) })
      void pump()
    })

  const run = (conn: Connection, group: Uint8Array[]) =>
    schedule(conn, async () => {
      conn.awaitingSync = group.length > 0 && group[group.length - 1]![0] === FLUSH
      for (const message of group)
        await db.execProtocolRawStream(message, {
          onRawData: (data) => {
            if (!conn.socket.destroyed) conn.socket.write(data)
          },
        })
    })

  // A client gone mid-exchange or mid-transaction must not leave the single session stuck in it.
  const release = (conn: Connection) =>
    schedule(conn, async () => {
      // Raw protocol, not db.exec: that takes runExclusive's lock, which this work already holds.
      const discard = { onRawData: () => undefined }
      if (conn.awaitingSync) await db.execProtocolRawStream(SYNC, discard)
      conn.awaitingSync = false
      if (owner === conn && db.isInTransaction()) await db.execProtocolRawStream(ROLLBACK, discard)
    }).catch(() => undefined)

  const onConnection = (socket: Socket) => {
    const conn: Connection = { socket, id: nextId++, awaitingSync: false }
    // Replies are small and written in pieces: without this, Nagle + delayed ACK add ~40 ms a round trip.
    socket.setNoDelay(true)
    sockets.add(socket)
    let buffer: Buffer = Buffer.alloc(0)
    let started = false
    let group: Uint8Array[] = []
    let chain = Promise.resolve()

    const drain = async () => {
      for (;;) {
        if (!started) {
          if (buffer.length < 8) return
          const length = buffer.readInt32BE(0)
          const code = buffer.readInt32BE(4)
          if (buffer.length < length) return
          const message = buffer.subarray(0, length)
          buffer = buffer.subarray(length)
          if (code === SSL_REQUEST) socket.write('N')
          else if (code === CANCEL_REQUEST) socket.end() // nothing to cancel in a single in-process backend
          else if (code === PROTOCOL_3) {
            started = true
            await run(conn, [new Uint8Array(message)])
          } else socket.destroy()
          continue
        }
        if (buffer.length < 5) return
        const type = String.fromCharCode(buffer[0]!)
        const length = 1 + buffer.readInt32BE(1)
        if (buffer.length < length) return
        const message = new Uint8Array(buffer.subarray(0, length))
        buffer = buffer.subarray(length)
        if (type === 'X') {
          socket.end()
          return
        }
        group.push(message)
        if (GROUP_END.has(type) || type === 'p') {
          const g = group
          group = []
          await run(conn, g)
        }
      }
    }

    socket.on('data', (data: Buffer) => {
      buffer = buffer.length ? Buffer.concat([buffer, data]) : data
      chain = chain.then(drain).catch(() => {
        socket.destroy()
      })
    })
    socket.on('error', () => socket.destroy())
    socket.on('close', () => {
      sockets.delete(socket)
      chain = chain.then(() => release(conn))
    })
  }

  const server: Server = createServer(onConnection)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => resolve())
  })
  const port = (server.address() as { port: number }).port
  return {
    host,
    port,
    close: async () => {
      closed = true
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await pumping // the database may close only once nothing runs on it
    },
  }
}
