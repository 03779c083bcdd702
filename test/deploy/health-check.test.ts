/** scripts/health-check.sh against a real host: one line per service, exit 0 when all answer, 1 when one is down. */
import { execFile, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { describeRuntimes } from '../support/harness.ts'
import { freePort } from '../support/process.ts'

const root = join(import.meta.dirname, '..', '..')
// Asynchronous: the Node host under test runs in this process and must keep answering meanwhile.
const check = (args: string[], env: Record<string, string> = {}, path = process.env.PATH ?? '') =>
  new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    execFile('bash', [join(root, 'scripts', 'health-check.sh'), ...args], { env: { PATH: path, ...env } }, (err, stdout, stderr) =>
      resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    )
  })

// A PATH with bash, node and the text tools the script uses, but no curl.
const noCurl = mkdtempSync(join(tmpdir(), 'nexus-nocurl-'))
for (const tool of ['bash', 'node', 'sed', 'grep', 'cut', 'paste', 'dirname']) {
  const at = spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim()
  symlinkSync(at, join(noCurl, tool))
}
afterAll(() => rmSync(noCurl, { recursive: true, force: true }))

describeRuntimes(
  'health-check.sh',
  (host) => {
    it('passes a healthy service (degraded while Ollama is down: a warning, or a failure with --strict)', async () => {
      const res = await check([`cortex=${host().url}`, host().url])
      expect(res.stdout).toBe(`degraded cortex (ollama failing)\ndegraded ${host().url} (ollama failing)\n`)
      expect(res.status).toBe(0)
      expect((await check(['--strict', `cortex=${host().url}`])).status).toBe(1)
    })

    it('fails, naming it, when one service of several does not answer', async () => {
      const closed = `http://127.0.0.1:${await freePort()}`
      const res = await check([`cortex=${host().url}`, `auth=${closed}`])
      expect(res.stdout).toContain(`down     auth (no answer from ${closed})`)
      expect(res.status).toBe(1)
    })

    it('reads NEXUS_HEALTH_URLS, and works with Node alone when curl is missing', async () => {
      expect(spawnSync(join(noCurl, 'bash'), ['-c', 'command -v curl'], { env: { PATH: noCurl } }).status).not.toBe(0)
      const res = await check([], { NEXUS_HEALTH_URLS: `one=${host().url}` }, noCurl)
      expect(res.stdout).toBe('degraded one (ollama failing)\n')
      expect(res.status).toBe(0)
    })
  },
  { groups: ['ops'] },
)

describe('health-check.sh usage', () => {
  it('refuses an unknown option with exit 2', async () => {
    const res = await check(['--nope'])
    expect(res.status).toBe(2)
    expect(res.stderr).toMatch(/unknown option --nope/)
  })
})
