/** WebSocket upgrades through each host: handshake, messages both ways, close codes, refusals in the envelope. */
import { expect, it } from 'vitest'
import WebSocket from 'ws'
import { describeRuntimes, expectEnvelope } from '../support/harness.ts'

const open = (url: string) =>
  new Promise<{ ws: WebSocket; messages: string[]; closed: Promise<{ code: number; reason: string }> }>((resolve, reject) => {
    const ws = new WebSocket(url)
    const messages: string[] = []
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })))
    ws.on('message', (d) => messages.push(d.toString()))
    ws.once('open', () => resolve({ ws, messages, closed }))
    ws.once('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)))
    ws.once('error', reject)
  })

const until = async (fn: () => boolean, ms = 5000) => {
  const end = Date.now() + ms
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 20))
  }
}

describeRuntimes(
  'WebSocket upgrades',
  (host) => {
    it('completes the handshake, sends on open, echoes, and closes with the function’s code', async () => {
      const { ws, messages, closed } = await open(host().url.replace('http', 'ws') + '/test/ws')
      await until(() => messages.length >= 1)
      expect(JSON.parse(messages[0]!)).toEqual({ hello: true })
      ws.send('ping')
      await until(() => messages.length >= 2)
      expect(messages[1]).toBe('echo:ping')
      ws.send('bye')
      expect(await closed).toEqual({ code: 4000, reason: 'asked to close' })
    })

    it('answers a refused upgrade with the function’s status and the error envelope', async () => {
      await expect(open(host().url.replace('http', 'ws') + '/test/ws?reject=1')).rejects.toThrow('status 403')
    })

    it('answers a plain GET on a WebSocket route with 426 in the envelope', async () => {
      const res = await host().json('GET', '/test/ws')
      expectEnvelope(res, 426, 'UPGRADE_REQUIRED')
    })
  },
  {
    functions: ['health'],
    extraFunctions: [
      {
        name: 'test-ws-echo',
        file: 'test/fixtures/ws-echo.ts',
        group: 'ops',
        routes: [{ method: 'GET', path: '/test/ws' }],
        bindings: [],
        websocket: true,
        description: 'test fixture',
      },
    ],
  },
)
