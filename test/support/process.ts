/** Runs the real start command (`npm start`'s entry) as a child process, as a user would. */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'

const root = join(import.meta.dirname, '..', '..')

export interface Started {
  child: ChildProcess
  output: () => string
  /** Resolves with the exit code. */
  exited: Promise<number | null>
}

/** Runs `command` in the project's root with exactly the given environment (and PATH, HOME), output kept. */
const start = (command: string, args: string[], env: Record<string, string>): Started => {
  const child = spawn(command, args, {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return { child, output: () => out, exited }
}

/** Spawns a host entry (`local-runtime/node/main.ts` by default) with exactly the given environment. */
export const spawnHost = (env: Record<string, string>, entry = 'local-runtime/node/main.ts', args: string[] = []): Started =>
  // `node --import tsx`, as `npm start` and the image run it: not the tsx CLI, which relays SIGTERM to a
  // child of its own and, when that child has not answered within 60 ms (a busy machine), SIGKILLs it
  // and exits 143, so the host never drains (seen in CI: test/gateway/sovereignty.test.ts).
  start(process.execPath, ['--import', 'tsx', entry, ...args], env)

/** Runs the real `npm start` (npm itself, its `prestart` included) with exactly the given environment. */
export const spawnNpmStart = (env: Record<string, string>): Started => start('npm', ['start', '--silent'], env)

/** Polls `url` until it answers 200 or the deadline passes. */
export const waitFor200 = async (url: string, timeoutMs: number, started?: Started): Promise<Response> => {
  const deadline = Date.now() + timeoutMs
  let last = 'no answer'
  while (Date.now() < deadline) {
    if (started && started.child.exitCode !== null) throw new Error(`process exited early:\n${started.output()}`)
    try {
      const res = await fetch(url)
      if (res.status === 200) return res
      last = `status ${res.status}`
    } catch (err) {
      last = (err as Error).message
    }
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (${last})\n${started?.output() ?? ''}`)
}

/** A free TCP port on loopback. */
export const freePort = async (): Promise<number> => {
  const { createServer } = await import('node:net')
  return new Promise((resolve) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}
