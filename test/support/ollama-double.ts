/**
 * The Ollama test double: a real HTTP server on 127.0.0.1 speaking Ollama's wire format (NDJSON
 * `/api/chat`, `/api/embed`, `/api/tags`, `/api/version`), scriptable per request, recording every
 * request it receives. The one test double of the gateway suite: our own code is never mocked.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

/** What the double answers to one `/api/chat` request. Every field is optional. */
export interface ChatScript {
  /** Content deltas, one NDJSON line each (a string is split into words). Default: a greeting. */
  text?: string | string[]
  /** Whole tool calls (Ollama sends `arguments` as an object and no id). */
  toolCalls?: Array<{ name: string; arguments: Record<string, unknown> }>
  /** Each tool call in its own NDJSON line rather than all in one message. */
  toolCallsSeparately?: boolean
  /** Counts reported on the final line. */
  promptEvalCount?: number
  evalCount?: number
  doneReason?: 'stop' | 'length' | 'load'
  /** Milliseconds before the response head is written. */
  delayMs?: number
  /** Milliseconds between NDJSON lines. */
  chunkDelayMs?: number
  /** After this many content lines, write `{"error": ...}` and end the response (Ollama's mid-stream error). */
  errorAfter?: number
  errorMessage?: string
  /** Answer with this HTTP status and `{"error": errorMessage}` instead of a completion. */
  status?: number
  /** Write the head and the first line, then never write again (until the client goes away). */
  hang?: boolean
  /** Destroy the socket: before the head, or after the first content line. */
  destroy?: 'before-head' | 'mid-stream'
  /** End the NDJSON stream without the final `done: true` line. */
  truncate?: boolean
}

export interface RecordedRequest {
  method: string
  path: string
  /** The Host header as received: what the gateway addressed. */
  host: string
  headers: Record<string, string | string[] | undefined>
  /** Parsed JSON body, or undefined. */
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary request JSON and assert on it
  body: any
  /** True once the client closed the connection before the double finished its answer. */
  clientClosed: boolean
  /** True once the double finished writing its answer. */
  finished: boolean
}

export interface OllamaDouble {
  url: string
  port: number
  /** Every request received, in order. */
  requests: RecordedRequest[]
  /** The `/api/chat` requests only. */
  chats(): RecordedRequest[]
  /** Scripts the next `/api/chat` answers (a queue); after it drains, `defaultScript` applies. */
  enqueue(...scripts: ChatScript[]): void
  /** The answer when the queue is empty (or a function of the request body). */
  defaultScript: ChatScript | ((body: Record<string, unknown>) => ChatScript)
  /** Local models /api/tags lists and /api/chat accepts. */
  models: string[]
  /** Dimensions of the vectors /api/embed returns. */
  embeddingDimensions: number
  /** Record requests (default). The benchmark turns it off so 100,000 requests keep no memory. */
  record: boolean
  /** Requests served, recorded or not. */
  served: number
  reset(): void
  /** Stops listening and cuts every open connection. */
  stop(): Promise<void>
  /** Listens again on the same port after stop(). */
  start(): Promise<void>
  close(): Promise<void>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const words = (text: string) => text.match(/\S+\s*/g) ?? [text]

/** A deterministic vector for a text, so tests can compare embeddings. */
const vectorFor = (text: string, dims: number) => {
  let h = 2166136261
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619)
  return Array.from({ length: dims }, (_, i) => {
    h = Math.imul(h ^ (h >>> 15), 2246822507) ^ i
    return Math.round(((h >>> 0) / 0xffffffff - 0.5) * 2000) / 1000
  })
}

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    let data = ''
    req.setEncoding('utf8')
    req.on('data', (d: string) => (data += d))
    req.on('end', () => resolve(data))
    req.on('error', reject)
  })

const nowIso = () => new Date().toISOString()

/** Starts the double on a free loopback port (or `port`). */
export const startOllamaDouble = async (options: { port?: number; models?: string[] } = {}): Promise<OllamaDouble> => {
  const requests: RecordedRequest[] = []
  const queue: ChatScript[] = []
  const sockets = new Set<Socket>()
  let server: Server

  const double: OllamaDouble = {
    url: '',
    port: 0,
    requests,
    chats: () => requests.filter((r) => r.path === '/api/chat'),
    enqueue: (...scripts) => queue.push(...scripts),
    defaultScript: {},
    models: options.models ?? ['llama3.2:3b', 'qwen2.5:0.5b', 'nomic-embed-text:latest'],
    embeddingDimensions: 8,
    record: true,
    served: 0,
    reset() {
      requests.length = 0
      queue.length = 0
      double.defaultScript = {}
    },
    async stop() {
      await new Promise<void>((r) => {
        server.close(() => r())
        for (const s of sockets) s.destroy()
      })
    },
    async start() {
      await listen(double.port)
    },
    async close() {
      await double.stop().catch(() => undefined)
    },
  }

  const json = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body)
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }

  const notFound = (model: string) => ({ error: `model "${model}" not found, try pulling it first` })

  const chat = async (req: IncomingMessage, res: ServerResponse, rec: RecordedRequest) => {
    const body = rec.body ?? {}
    const model = String(body.model ?? '')
    if (!double.models.includes(model)) return json(res, 404, notFound(model))
    const script: ChatScript =
      queue.shift() ?? (typeof double.defaultScript === 'function' ? double.defaultScript(body) : double.defaultScript)
    if (script.delayMs) await sleep(script.delayMs)
    if (script.destroy === 'before-head') {
      req.socket.destroy()
      return
    }
    if (script.status) return json(res, script.status, { error: script.errorMessage ?? 'internal error' })

    const deltas = Array.isArray(script.text) ? script.text : words(script.text ?? 'Hello from the Ollama double.')
    const base = () => ({ model, created_at: nowIso() })
    const lines: Array<Record<string, unknown>> = []
    deltas.forEach((d) => lines.push({ ...base(), message: { role: 'assistant', content: d }, done: false }))
    const calls = script.toolCalls ?? []
    if (calls.length) {
      const asOllama = (c: { name: string; arguments: Record<string, unknown> }) => ({
        function: { name: c.name, arguments: c.arguments },
      })
      if (script.toolCallsSeparately)
        for (const c of calls) lines.push({ ...base(), message: { role: 'assistant', content: '', tool_calls: [asOllama(c)] }, done: false })
      else lines.push({ ...base(), message: { role: 'assistant', content: '', tool_calls: calls.map(asOllama) }, done: false })
    }
    const final = {
      ...base(),
      message: { role: 'assistant', content: '' },
      done: true,
      done_reason: script.doneReason ?? 'stop',
      total_duration: 1_234_567,
      load_duration: 12_345,
      prompt_eval_count: script.promptEvalCount ?? 12,
      prompt_eval_duration: 23_456,
      eval_count: script.evalCount ?? deltas.length,
      eval_duration: 345_678,
    }

    if (body.stream === false) {
      // One JSON object: the whole message and the final counters.
      const message: Record<string, unknown> = { role: 'assistant', content: deltas.join('') }
      if (calls.length) message.tool_calls = calls.map((c) => ({ function: { name: c.name, arguments: c.arguments } }))
      return json(res, 200, { ...final, message })
    }

    res.writeHead(200, { 'content-type': 'application/x-ndjson' })
    // Node buffers the head until the first write; Ollama's head goes out with the first line too.
    let sent = 0
    for (const line of lines) {
      if (rec.clientClosed) return
      if (script.errorAfter !== undefined && sent >= script.errorAfter) {
        res.end(JSON.stringify({ error: script.errorMessage ?? 'an error was encountered while running the model' }) + '\n')
        rec.finished = true
        return
      }
      res.write(JSON.stringify(line) + '\n')
      sent++
      if (script.destroy === 'mid-stream') {
        await sleep(20)
        req.socket.destroy()
        return
      }
      if (script.hang) return // the close handler records when the client gives up
      if (script.chunkDelayMs) await sleep(script.chunkDelayMs)
    }
    if (script.errorAfter !== undefined && sent >= script.errorAfter) {
      res.end(JSON.stringify({ error: script.errorMessage ?? 'an error was encountered while running the model' }) + '\n')
      rec.finished = true
      return
    }
    if (script.truncate) {
      res.end()
      rec.finished = true
      return
    }
    res.end(JSON.stringify(final) + '\n')
    rec.finished = true
  }

  const embed = (res: ServerResponse, rec: RecordedRequest) => {
    const body = rec.body ?? {}
    const model = String(body.model ?? '')
    if (!double.models.includes(model)) return json(res, 404, notFound(model))
    const input: string[] = Array.isArray(body.input) ? body.input : [String(body.input ?? '')]
    const dims = typeof body.dimensions === 'number' ? body.dimensions : double.embeddingDimensions
    json(res, 200, {
      model,
      embeddings: input.map((t) => vectorFor(t, dims)),
      total_duration: 14_143_917,
      load_duration: 1_019_500,
      prompt_eval_count: input.reduce((n, t) => n + words(t).length, 0),
    })
  }

  const tags = (res: ServerResponse) =>
    json(res, 200, {
      models: double.models.map((name, i) => ({
        name,
        model: name,
        modified_at: '2025-01-0' + ((i % 9) + 1) + 'T10:00:00.000000000Z',
        size: 2_019_393_189 + i,
        digest: 'a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b7' + (i % 10),
        details: {
          parent_model: '',
          format: 'gguf',
          family: 'llama',
          families: ['llama'],
          parameter_size: '3.2B',
          quantization_level: 'Q4_K_M',
        },
      })),
    })

  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://double').pathname
    const rec: RecordedRequest = {
      method: req.method ?? 'GET',
      path,
      host: req.headers.host ?? '',
      headers: { ...req.headers },
      body: undefined,
      clientClosed: false,
      finished: false,
    }
    double.served++
    if (double.record) requests.push(rec)
    res.on('close', () => {
      if (!res.writableFinished) rec.clientClosed = true
    })
    const text = await readBody(req)
    if (text) {
      try {
        rec.body = JSON.parse(text)
      } catch {
        return json(res, 400, { error: 'invalid JSON' })
      }
    }
    try {
      if (req.method === 'POST' && path === '/api/chat') return await chat(req, res, rec)
      if (req.method === 'POST' && path === '/api/embed') return embed(res, rec)
      if (req.method === 'GET' && path === '/api/tags') return tags(res)
      if (req.method === 'GET' && path === '/api/version') return json(res, 200, { version: '0.12.6' })
      if (req.method === 'GET' && path === '/') return void res.end('Ollama is running')
      json(res, 404, { error: '404 page not found' })
    } catch (err) {
      if (!res.headersSent) json(res, 500, { error: (err as Error).message })
      else res.destroy()
    }
  }

  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server = createServer((req, res) => void handler(req, res))
      server.keepAliveTimeout = 5_000
      server.on('connection', (s) => {
        sockets.add(s)
        s.on('close', () => sockets.delete(s))
      })
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => {
        double.port = (server.address() as AddressInfo).port
        double.url = `http://127.0.0.1:${double.port}`
        resolve()
      })
    })

  await listen(options.port ?? 0)
  return double
}
