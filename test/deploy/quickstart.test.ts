/**
 * docs/QUICKSTART.md cannot rot: `npm start` as the doc runs it (embedded database, the doc's admin
 * password), an Ollama test double in place of the user's Ollama, then every ```sh block of the doc, in
 * order, as one bash script. The only change made to them: the host's URL for http://127.0.0.1:8080.
 * The embedded suite runs it (the doc sets no DATABASE_URL, so the real-server run would repeat it).
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { startOllamaDouble } from '../support/ollama-double.ts'
import { freePort, waitFor200 } from '../support/process.ts'

const root = join(import.meta.dirname, '..', '..')
const doc = readFileSync(join(root, 'docs', 'QUICKSTART.md'), 'utf8')
const blocks = (lang: string) => [...doc.matchAll(new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```$', 'gm'))].map((m) => m[1]!)

describe.skipIf(Boolean(process.env.DATABASE_URL))('docs/QUICKSTART.md, run as written', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'nexus-quickstart-'))
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

  it('gets a streamed completion and a completed command', { timeout: 120_000 }, async () => {
    const setup = blocks('shell').join('\n')
    expect(setup).toContain('npm install')
    expect(setup).toContain('ollama pull llama3.2:3b')
    const start = /^NEXUS_ADMIN_PASSWORD='([^']+)' npm start$/m.exec(setup)
    expect(start, 'the doc starts NEXUS with an admin password').not.toBeNull()
    const steps = blocks('sh')
    expect(steps.length).toBeGreaterThanOrEqual(7)

    const double = await startOllamaDouble({ models: ['llama3.2:3b'] })
    double.defaultScript = { text: 'Hello there, nice to meet you.' }
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    // `npm start` itself, as the doc has it (prestart included), on a fresh data directory.
    const npm = spawn('npm', ['start'], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        PORT: String(port),
        NEXUS_DATA_DIR: dataDir,
        NEXUS_ADMIN_PASSWORD: start![1]!,
        OLLAMA_BASE_URL: double.url,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, as in a terminal: Ctrl-C signals the whole group (npm, sh, tsx, the host).
      detached: true,
    })
    let out = ''
    npm.stdout.on('data', (d) => (out += d))
    npm.stderr.on('data', (d) => (out += d))
    // 'close': every process holding npm's output (npm, sh, tsx, the host) has exited.
    const exited = new Promise<number | null>((r) => npm.on('close', (code) => r(code)))
    try {
      await waitFor200(`${url}/health/ready`, 60_000, { child: npm, output: () => out, exited })
      expect(out).toMatch(new RegExp(`"msg":"NEXUS listening","url":"${url}"`))

      const script = ['set -euo pipefail', ...steps].join('\n').replaceAll('http://127.0.0.1:8080', url)
      const run = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn('bash', ['-c', script], { cwd: root, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' } })
        let stdout = ''
        let stderr = ''
        child.stdout.on('data', (d) => (stdout += d))
        child.stderr.on('data', (d) => (stderr += d))
        child.on('exit', (status) => resolve({ status, stdout, stderr }))
      })
      expect(run.status, `${run.stdout}\n${run.stderr}\n${out.slice(-2000)}`).toBe(0)
      // Step 4: a stream of chunks, ending [DONE], made by the "Ollama" with the alias's model.
      expect(run.stdout).toMatch(/^data: \{"id":"chatcmpl-[^"]+","object":"chat\.completion\.chunk"/m)
      expect(run.stdout).toMatch(/^data: \[DONE\]$/m)
      expect(double.chats().map((c) => c.body.model)).toEqual(['llama3.2:3b'])
      // Step 5: the command, completed.
      expect(run.stdout).toMatch(/"status":"completed","result":"hi"|"result":"hi".*"status":"completed"/)
      const last = run.stdout.trim().split('\n').pop()!
      expect(JSON.parse(last)).toMatchObject({ text: 'Say hi', agent_id: 'quickstart-agent', status: 'completed', result: 'hi' })
    } finally {
      // The doc's way to stop it: Ctrl-C, i.e. SIGINT to the foreground process group. (A SIGTERM to npm alone
      // does not reach the host: npm signals `sh -c`, and Debian's dash does not pass it on.)
      process.kill(-npm.pid!, 'SIGINT')
      await double.close()
    }
    await exited
    // The host got Ctrl-C and began to drain, and every process of `npm start` is gone. (Whether it logs
    // "stopped" first depends on npm and tsx, which signal it again; the drain itself is tested without them.)
    expect(out).toMatch(/"msg":"draining","signal":"SIGINT"/)
    expect(spawnSync('bash', ['-n', '-c', blocks('shell').join('\n')]).status).toBe(0) // the setup blocks parse too
  })
})
