/** A self-hosted Upstash-compatible REST + SSE endpoint for the bus, in front of real Redis or an in-process store. */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import Redis, { ReplyError } from 'ioredis'
import { INCR_SCRIPT } from '../lib/bus/types.ts'
import type { Logger } from '../lib/log.ts'

export type BusRestBackend = { kind: 'redis'; url: string } | { kind: 'memory' }

export interface BusRestServerOptions {
  backend: BusRestBackend
  /** Bearer token clients must present; a random one when omitted. */
  token?: string
  /** Interface to bind; 127.0.0.1 by default. */
  host?: string
  /** Port to bind; 0 (the default) picks a free one. */
  port?: number
  /** Where unexpected failures are reported (redacted); silent when omitted. */
  logger?: Logger
}

export interface BusRestServer {
  /** Base URL to give the Upstash driver (UPSTASH_REDIS_REST_URL). */
  url: string
  /** The bearer token (UPSTASH_REDIS_REST_TOKEN). */
  token: string
  /** Ends every open stream and connection, then stops listening. */
  close(): Promise<void>
}

const MAX_BODY_BYTES = 1024 * 1024
const MAX_STREAMS = 1_000
// A subscriber that cannot keep up is cut off (it reconnects) instead of growing our memory without end,
// like Redis' own client-output-buffer-limit for pub/sub.
const MAX_STREAM_BUFFER_BYTES = 16 * 1024 * 1024
// Proxies and load balancers drop silent connections; a comment line every so often keeps streams alive.
const KEEPALIVE_MS = 15_000

/** A Redis reply as either backend produces it. */
type Reply = string | Buffer | number | null | Error | Reply[]
type Outcome = { result: Reply } | { error: string }

interface Backend {
  exec(cmd: string[]): Promise<Outcome>
  pipeline(cmds: string[][]): Promise<Outcome[]>
  /** All or nothing: one error when the transaction was refused, else one outcome per command. */
  transaction(cmds: string[][]): Promise<Outcome[] | { error: string }>
  /** Resolves once the subscription is active. `onEnd` fires if the backend drops it. */
  subscribe(channel: string, onMessage: (message: string) => void, onEnd: () => void): Promise<BackendSubscription>
  close(): Promise<void>
}

interface BackendSubscription {
  /** Subscriptions this connection holds, as Redis reports in its SUBSCRIBE reply. */
  count: number
  close(): void
}

/** Refuses a request with a status and the client's `{ error }` shape. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

/** Redis could not be reached or did not answer in time: the client gets 503, the cause goes to the log. */
const unavailable = (cause?: unknown) => new HttpError(503, 'ERR the bus backend is unavailable', { cause })

/**
 * Starts the REST server: `POST /` (one command), `/pipeline`, `/multi-exec` and `/subscribe/<channel>`
 * (SSE), with bearer-token auth, as @upstash/redis expects. Binds 127.0.0.1 unless told otherwise.
 */
export const startBusRestServer = async (options: BusRestServerOptions): Promise<BusRestServer> => {
  const token = options.token ?? randomBytes(32).toString('base64url')
  if (!token) throw new Error('the bus REST server needs a non-empty token')
  const tokenDigest = digest(token)
  const backend = options.backend.kind === 'redis' ? createRedisBackend(options.backend.url) : createMemoryBackend()
  const streams = new Set<ServerResponse>()
  const sockets = new Set<Socket>()
  let closing = false

  const authorized = (req: IncomingMessage) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')
    // Compared as digests so the comparison takes the same time whatever the length of the guess.
    return match?.[1] !== undefined && timingSafeEqual(digest(match[1]), tokenDigest)
  }

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (!authorized(req)) throw new HttpError(401, 'Unauthorized')
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST')
      throw new HttpError(405, 'ERR only POST is supported')
    }
    const path = (req.url ?? '/').split('?')[0] ?? '/'
    if (path.startsWith('/subscribe/')) return handleSubscribe(req, res, path.slice('/subscribe/'.length))
    if (path !== '/' && path !== '/pipeline' && path !== '/multi-exec') throw new HttpError(404, 'ERR no such endpoint')

    const body = parseJson(await readBody(req))
    const base64 = String(req.headers['upstash-encoding'] ?? '').toLowerCase() === 'base64'
    if (path === '/') {
      const out = await backend.exec(parseCommand(body))
      if ('error' in out) return sendJson(res, 400, out)
      return sendJson(res, 200, { result: encodeReply(out.result, base64) })
    }
    const cmds = parseCommandList(body)
    const outs = path === '/pipeline' ? await backend.pipeline(cmds) : await backend.transaction(cmds)
    if (!Array.isArray(outs)) return sendJson(res, 400, outs)
    sendJson(res, 200, outs.map((o) => ('error' in o ? o : { result: encodeReply(o.result, base64) })))
  }

  const handleSubscribe = async (req: IncomingMessage, res: ServerResponse, rawChannel: string) => {
    await readBody(req) // the client sends `[]`; read it so the request is complete
    let channel: string
    try {
      channel = decodeURIComponent(rawChannel)
    } catch {
      throw new HttpError(400, 'ERR malformed channel name')
    }
    if (!channel || /[\r\n]/.test(channel)) throw new HttpError(400, 'ERR malformed channel name')
    if (closing) throw new HttpError(503, 'ERR the server is closing')
    if (streams.size >= MAX_STREAMS) throw new HttpError(503, 'ERR too many open streams')

    let sub: BackendSubscription | undefined
    let gone = false
    let droppedEarly = false
    let keepalive: ReturnType<typeof setInterval> | undefined
    const write = (chunk: string) => {
      if (gone || res.writableEnded || res.destroyed) return
      res.write(chunk)
      if (res.writableLength > MAX_STREAM_BUFFER_BYTES) res.destroy()
    }
    // Registered before subscribing: a client that leaves meanwhile must not leak the backend subscription.
    res.once('close', () => {
      gone = true
      clearInterval(keepalive)
      streams.delete(res)
      sub?.close()
    })
    streams.add(res)
    try {
      sub = await backend.subscribe(
        channel,
        (message) => write(sseEvent('message', channel, message)),
        // Before the headers, ending the response would send an empty 200: fail the request instead.
        () => (res.headersSent ? res.end() : (droppedEarly = true)),
      )
    } catch (err) {
      streams.delete(res)
      throw unavailable(err)
    }
    if (gone) return sub.close()
    if (droppedEarly) {
      sub.close()
      streams.delete(res)
      throw unavailable()
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    })
    write(sseEvent('subscribe', channel, String(sub.count)))
    keepalive = setInterval(() => write(': keepalive\n\n'), KEEPALIVE_MS)
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return void res.destroy()
      if (err instanceof HttpError) {
        if (err.cause !== undefined) options.logger?.warn('bus REST server: backend failed', { err: err.cause })
        // The rest of a refused body is not worth reading: close the connection after the reply.
        if (err.status === 401 || err.status === 413) res.setHeader('Connection', 'close')
        return sendJson(res, err.status, { error: err.message })
      }
      options.logger?.error('bus REST server: request failed', { err })
      sendJson(res, 500, { error: 'ERR internal error' })
    })
  })
  // Bounds how long a client may take to send one request; open SSE responses are not affected.
  server.requestTimeout = 30_000
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
    else socket.destroy()
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
  } catch (err) {
    await backend.close() // else a Redis connection would go on reconnecting for a server that never ran
    throw err
  }
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address

  let closed: Promise<void> | undefined
  return {
    url: `http://${host}:${address.port}`,
    token,
    close() {
      closed ??= (async () => {
        closing = true
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()))
        // Streams get a clean end (clients see EOF and reconnect elsewhere); sockets a graceful close, and
        // whatever has not closed a second later is cut.
        for (const res of streams) {
          if (res.headersSent) res.end()
          else res.destroy()
        }
        for (const socket of sockets) socket.end()
        const cut = setTimeout(() => {
          for (const socket of sockets) socket.destroy()
        }, 1_000)
        await stopped
        clearTimeout(cut)
        await backend.close()
      })()
      return closed
    },
  }
}

const digest = (value: string) => createHash('sha256').update(value).digest()

const sendJson = (res: ServerResponse, status: number, body: unknown) => {
  const json = JSON.stringify(body)
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(json) })
  res.end(json)
}

/** Reads the body up to MAX_BODY_BYTES; larger ones are refused with 413 without being kept. */
const readBody = (req: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'])
    if (declared > MAX_BODY_BYTES) {
      req.resume() // discard, so the reply can go out
      return reject(new HttpError(413, 'ERR request body too large'))
    }
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size <= MAX_BODY_BYTES) return void chunks.push(chunk)
      req.off('data', onData)
      req.resume()
      reject(new HttpError(413, 'ERR request body too large'))
    }
    req.on('data', onData)
    req.once('end', () => resolve(Buffer.concat(chunks)))
    req.once('error', reject)
  })

const parseJson = (body: Buffer): unknown => {
  try {
    return JSON.parse(body.toString('utf8'))
  } catch {
    throw new HttpError(400, 'ERR malformed JSON body')
  }
}

/** A command is a non-empty JSON array of strings, numbers or booleans (the client sends all three). */
const parseCommand = (value: unknown): string[] => {
  if (!Array.isArray(value) || value.length === 0)
    throw new HttpError(400, 'ERR a command must be a non-empty JSON array')
  const out: string[] = []
  for (const v of value) {
    if (typeof v === 'string') out.push(v)
    else if (typeof v === 'number' && Number.isFinite(v)) out.push(String(v))
    else if (typeof v === 'boolean') out.push(String(v))
    else throw new HttpError(400, 'ERR command arguments must be strings, numbers or booleans')
  }
  if (out[0] === '') throw new HttpError(400, 'ERR empty command name')
  return out
}

const parseCommandList = (value: unknown): string[][] => {
  if (!Array.isArray(value) || value.length === 0)
    throw new HttpError(400, 'ERR expected a non-empty JSON array of commands')
  return value.map(parseCommand)
}

const OK = Buffer.from('OK')

/**
 * Shapes a reply for JSON. With `Upstash-Encoding: base64` every string except the status OK is base64
 * (binary safe), as the client decodes it; without, strings are UTF-8 text.
 */
const encodeReply = (reply: Reply, base64: boolean): unknown => {
  if (reply === null || typeof reply === 'number') return reply
  if (Array.isArray(reply)) return reply.map((r) => encodeReply(r, base64))
  if (reply instanceof Error) return encodeReply(reply.message, base64) // an error nested in an array reply
  if (typeof reply === 'string') {
    if (!base64 || reply === 'OK') return reply
    return Buffer.from(reply, 'utf8').toString('base64')
  }
  if (!base64) return reply.toString('utf8')
  return reply.equals(OK) ? 'OK' : reply.toString('base64')
}

/**
 * One SSE event in the format @upstash/redis parses (`data: <type>,<channel>,<payload>`). A payload with
 * line breaks spans several `data:` lines, which SSE readers join with LF (so CR and CRLF arrive as LF).
 */
const sseEvent = (type: string, channel: string, payload: string) =>
  `data: ${type},${channel},${payload.split(/\r\n|\r|\n/).join('\ndata: ')}\n\n`

// ----- Redis backend: commands pass through ioredis -----

// Commands that would change the shared connection's state or block it for everyone; SUBSCRIBE has its
// own endpoint and MULTI/EXEC theirs.
const REFUSED = new Set([
  'subscribe', 'psubscribe', 'ssubscribe', 'unsubscribe', 'punsubscribe', 'sunsubscribe', 'monitor',
  'multi', 'exec', 'discard', 'watch', 'unwatch', 'select', 'swapdb', 'quit', 'reset', 'hello', 'auth',
  'client', 'sync', 'psync', 'replconf', 'wait', 'waitaof',
  'blpop', 'brpop', 'brpoplpush', 'blmove', 'blmpop', 'bzpopmin', 'bzpopmax', 'bzmpop',
])

const refusal = (cmd: string[]): string | null => {
  const name = (cmd[0] ?? '').toLowerCase()
  if (REFUSED.has(name)) return `ERR '${clip(name)}' is not supported over REST`
  if ((name === 'xread' || name === 'xreadgroup') && cmd.some((a) => a.toLowerCase() === 'block'))
    return `ERR '${name}' with BLOCK is not supported over REST`
  return null
}

// ioredis types ReplyError loosely, so `instanceof` alone does not narrow.
const isReplyError = (err: unknown): err is Error => err instanceof ReplyError

const clip = (s: string) => (s.length > 64 ? `${s.slice(0, 64)}...` : s)

const createRedisBackend = (url: string): Backend => {
  const connect = (subscriber: boolean) => {
    const r = new Redis(url, {
      lazyConnect: subscriber,
      enableOfflineQueue: true,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      commandTimeout: subscriber ? undefined : 5_000,
      // The command connection heals by itself; a subscriber connection that drops ends its SSE stream
      // instead, and the client reconnects (messages in between are lost either way, as in Redis).
      retryStrategy: subscriber ? () => null : (times) => Math.min(times * 200, 2_000),
      autoResubscribe: false,
    })
    r.on('error', () => undefined) // surfaced through command failures, not as crashes
    return r
  }
  const client = connect(false)
  const subscribers = new Set<Redis>()

  const settle = (err: unknown, result: unknown): Outcome => {
    if (isReplyError(err)) return { error: err.message }
    if (err) throw unavailable(err)
    return { result: result as Reply } // ioredis' callBuffer replies are Buffers, numbers, null or arrays
  }

  return {
    async exec(cmd) {
      const refused = refusal(cmd)
      if (refused) return { error: refused }
      const [name, ...args] = cmd as [string, ...string[]]
      try {
        return settle(null, await client.callBuffer(name, ...args))
      } catch (err) {
        return settle(err, null)
      }
    },
    async pipeline(cmds) {
      const refused = cmds.map(refusal)
      const pipe = client.pipeline()
      cmds.forEach((cmd, i) => {
        if (!refused[i]) pipe.callBuffer(cmd[0] as string, ...cmd.slice(1))
      })
      const results = pipe.length > 0 ? ((await pipe.exec()) ?? []) : []
      let next = 0
      return cmds.map((_, i) => {
        const refusedMessage = refused[i]
        if (refusedMessage) return { error: refusedMessage }
        const [err, result] = results[next++] ?? [new Error('missing pipeline reply'), null]
        return settle(err, result)
      })
    },
    async transaction(cmds) {
      const refused = cmds.map(refusal).find((r) => r !== null)
      if (refused) return { error: refused }
      const multi = client.multi()
      for (const cmd of cmds) multi.callBuffer(cmd[0] as string, ...cmd.slice(1))
      try {
        const results = await multi.exec()
        if (!results) return { error: 'EXECABORT Transaction discarded' }
        return results.map(([err, result]) => settle(err, result))
      } catch (err) {
        if (isReplyError(err)) return { error: err.message }
        throw unavailable(err)
      }
    },
    async subscribe(channel, onMessage, onEnd) {
      const sub = connect(true)
      subscribers.add(sub)
      sub.on('message', (ch: string, message: string) => {
        if (ch === channel) onMessage(message)
      })
      const ended = () => {
        subscribers.delete(sub)
        onEnd()
      }
      sub.once('end', ended)
      let count: number
      try {
        count = Number(await sub.subscribe(channel))
      } catch (err) {
        sub.off('end', ended)
        subscribers.delete(sub)
        sub.disconnect()
        throw err
      }
      return {
        count,
        close() {
          sub.off('end', ended)
          subscribers.delete(sub)
          sub.disconnect()
        },
      }
    },
    async close() {
      for (const s of subscribers) s.disconnect()
      subscribers.clear()
      await client.quit().catch(() => client.disconnect())
    },
  }
}

// ----- Memory backend: the commands the Upstash bus driver sends, and SUBSCRIBE -----

/** A Redis error reply. */
class CommandError extends Error {}

const INT = /^-?(0|[1-9][0-9]*)$/
const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n

const parseInteger = (s: string): bigint => {
  if (!INT.test(s)) throw new CommandError('ERR value is not an integer or out of range')
  const n = BigInt(s)
  if (n < INT64_MIN || n > INT64_MAX) throw new CommandError('ERR value is not an integer or out of range')
  return n
}

const arity = (name: string) => new CommandError(`ERR wrong number of arguments for '${name}' command`)

/** The arguments, when there are exactly `n` of them; else Redis' arity error. */
const exactly = <N extends 1 | 2>(args: string[], n: N, name: string) => {
  if (args.length !== n) throw arity(name)
  return args as N extends 1 ? [string] : [string, string]
}

interface Entry {
  value: string
  expiresAt: number | null
}

const createMemoryBackend = (): Backend => {
  const store = new Map<string, Entry>()
  const channels = new Map<string, Set<(message: string) => void>>()
  let sweepAt = 0

  const live = (key: string): Entry | undefined => {
    const e = store.get(key)
    if (e && e.expiresAt !== null && e.expiresAt <= Date.now()) {
      store.delete(key)
      return undefined
    }
    return e
  }
  // Expired keys nobody reads again are swept at most once a second, so memory stays bounded.
  const sweep = () => {
    const now = Date.now()
    if (now < sweepAt) return
    sweepAt = now + 1_000
    for (const [k, e] of store) if (e.expiresAt !== null && e.expiresAt <= now) store.delete(k)
  }

  const incrBy = (key: string, by: bigint): number => {
    const e = live(key)
    const next = (e ? parseInteger(e.value) : 0n) + by
    if (next < INT64_MIN || next > INT64_MAX) throw new CommandError('ERR increment or decrement would overflow')
    if (e) e.value = String(next) // INCRBY keeps the key's expiry
    else store.set(key, { value: String(next), expiresAt: null })
    return Number(next)
  }

  /** PEXPIRE/EXPIRE with their NX/XX/GT/LT conditions; a time not in the future deletes the key, as in Redis. */
  const expire = (args: string[], unitMs: number, name: string): number => {
    const [key, amount, ...flags] = args
    if (key === undefined || amount === undefined) throw arity(name)
    const ms = parseInteger(amount) * BigInt(unitMs)
    const [flag, ...extra] = flags.map((f) => f.toLowerCase())
    if (extra.length > 0 || (flag !== undefined && !['nx', 'xx', 'gt', 'lt'].includes(flag)))
      throw new CommandError(`ERR Unsupported option ${clip(flags.join(' '))}`)
    const e = live(key)
    if (!e) return 0
    const at = Date.now() + Number(ms)
    const current = e.expiresAt ?? Infinity // no expiry counts as an infinite TTL for GT and LT
    if (flag === 'nx' && e.expiresAt !== null) return 0
    if (flag === 'xx' && e.expiresAt === null) return 0
    if (flag === 'gt' && !(at > current)) return 0
    if (flag === 'lt' && !(at < current)) return 0
    if (ms <= 0n) store.delete(key)
    else e.expiresAt = at
    return 1
  }

  const ttl = (key: string, unit: 'ms' | 's'): number => {
    const e = live(key)
    if (!e) return -2
    if (e.expiresAt === null) return -1
    const ms = Math.max(0, e.expiresAt - Date.now())
    return unit === 'ms' ? ms : Math.floor((ms + 500) / 1000) // Redis rounds TTL to the nearest second
  }

  const set = (args: string[]): Reply => {
    if (args.length < 2) throw arity('set')
    const [key, value, ...opts] = args as [string, string, ...string[]]
    let nx = false
    let xx = false
    let ttlMs: number | null = null
    for (let i = 0; i < opts.length; i++) {
      const opt = (opts[i] as string).toLowerCase()
      if (opt === 'nx' && !xx) nx = true
      else if (opt === 'xx' && !nx) xx = true
      else if ((opt === 'px' || opt === 'ex') && ttlMs === null && i + 1 < opts.length) {
        const n = parseInteger(opts[++i] as string)
        if (n <= 0n) throw new CommandError("ERR invalid expire time in 'set' command")
        ttlMs = Number(opt === 'ex' ? n * 1000n : n)
      } else throw new CommandError('ERR syntax error')
    }
    sweep()
    const exists = live(key) !== undefined
    if ((nx && exists) || (xx && !exists)) return null
    store.set(key, { value, expiresAt: ttlMs === null ? null : Date.now() + ttlMs })
    return 'OK'
  }

  const evalIncr = (args: string[]): Reply => {
    if (args.length < 2) throw arity('eval')
    const [script, numkeys, key, by, ms, ...rest] = args
    if (script !== INCR_SCRIPT)
      throw new CommandError('ERR the memory backend runs only the bus incr script; use the redis backend for others')
    if (numkeys !== '1' || key === undefined || by === undefined || ms === undefined || rest.length > 0)
      throw new CommandError('ERR the bus incr script takes one key and two arguments')
    const step = parseInteger(by)
    sweep()
    const v = incrBy(key, step)
    const window = Number(ms)
    if (window > 0 && BigInt(v) === step) expire([key, String(Math.trunc(window))], 1, 'pexpire')
    return v
  }

  const commands = new Map<string, (args: string[]) => Reply>([
    ['ping', (a) => (a.length === 0 ? 'PONG' : exactly(a, 1, 'ping')[0])],
    ['get', (a) => live(exactly(a, 1, 'get')[0])?.value ?? null],
    ['set', set],
    ['del', (a) => {
      if (a.length === 0) throw arity('del')
      let n = 0
      for (const k of a) if (live(k) && store.delete(k)) n++
      return n
    }],
    ['incr', (a) => {
      const [key] = exactly(a, 1, 'incr')
      sweep()
      return incrBy(key, 1n)
    }],
    ['incrby', (a) => {
      const [key, by] = exactly(a, 2, 'incrby')
      sweep()
      return incrBy(key, parseInteger(by))
    }],
    ['pexpire', (a) => expire(a, 1, 'pexpire')],
    ['expire', (a) => expire(a, 1000, 'expire')],
    ['ttl', (a) => ttl(exactly(a, 1, 'ttl')[0], 's')],
    ['pttl', (a) => ttl(exactly(a, 1, 'pttl')[0], 'ms')],
    ['publish', (a) => {
      const [channel, message] = exactly(a, 2, 'publish')
      const targets = channels.get(channel)
      if (!targets) return 0
      // Synchronous delivery into each stream keeps messages in publish order.
      for (const deliver of [...targets]) deliver(message)
      return targets.size
    }],
    ['eval', evalIncr],
  ])

  const run = (cmd: string[]): Outcome => {
    const [name, ...args] = cmd as [string, ...string[]]
    const fn = commands.get(name.toLowerCase())
    if (!fn) return { error: `ERR unknown command '${clip(name)}'` }
    try {
      return { result: fn(args) }
    } catch (err) {
      if (err instanceof CommandError) return { error: err.message }
      throw err
    }
  }

  return {
    exec: async (cmd) => run(cmd),
    pipeline: async (cmds) => cmds.map(run),
    async transaction(cmds) {
      // One thread and no awaits in between: running the commands in a row is already atomic. As in Redis,
      // an unknown command refuses the whole transaction, while a failing command fails alone.
      if (cmds.some((c) => !commands.has((c[0] as string).toLowerCase())))
        return { error: 'EXECABORT Transaction discarded because of previous errors.' }
      return cmds.map(run)
    },
    async subscribe(channel, onMessage) {
      let set = channels.get(channel)
      if (!set) channels.set(channel, (set = new Set()))
      const deliver = (message: string) => onMessage(message)
      set.add(deliver)
      return {
        count: 1,
        close() {
          const s = channels.get(channel)
          s?.delete(deliver)
          if (s && s.size === 0) channels.delete(channel)
        },
      }
    },
    async close() {
      channels.clear()
      store.clear()
    },
  }
}
