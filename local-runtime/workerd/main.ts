/** `npm run dev:workerd`: the workerd host. Same port rules and `--service` / `--function` flags as `npm start`. */
import { parseArgs } from 'node:util'
import { ConfigError } from '../../lib/env.ts'
import { startWorkerdHost, type WorkerdHost } from './host.ts'

const list = (v: string[] | undefined) => v?.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean)

const main = async () => {
  const { values } = parseArgs({
    options: { service: { type: 'string', multiple: true }, function: { type: 'string', multiple: true } },
  })
  let host: WorkerdHost
  try {
    host = await startWorkerdHost({ groups: list(values.service) as never, functions: list(values.function) })
  } catch (err) {
    const message = err instanceof ConfigError ? err.message : (err as Error).message
    process.stderr.write(`nexus: cannot start: ${message}\n`)
    process.exit(1)
  }
  process.stdout.write(`${JSON.stringify({ level: 'info', msg: 'NEXUS (workerd) listening', url: host.url })}\n`)
  let stopping = false
  const shutdown = () => {
    if (stopping) return
    stopping = true
    const force = setTimeout(() => process.exit(1), 30_000)
    force.unref()
    host.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  // miniflare's own signal hook exits with 143 at once; we drain instead (its 'exit' hook stays).
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    for (const listener of process.listeners(signal)) process.removeListener(signal, listener)
    process.on(signal, shutdown)
  }
}

void main()
