/**
 * `npm start`: the Node host. `--service <group>` and `--function <name>` (repeatable, or comma lists) serve a
 * subset; without flags, `NEXUS_SERVICE` and `NEXUS_FUNCTION` (comma lists) do the same, for containers.
 */
import { parseArgs } from 'node:util'
import { functions } from '../../workers.config.ts'
import { ConfigError } from '../../lib/env.ts'
import { startNodeHost, type NodeHost } from './host.ts'

const list = (v: string[] | undefined) => v?.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean)

/**
 * The function set: the flags when given, else the environment (NEXUS_SERVICE / NEXUS_FUNCTION; not
 * NEXUS_SERVICES, which is the binding through which the host hands functions their services).
 * An unknown name stops start-up with one line naming where it came from.
 */
const selection = (flags: { service?: string[]; function?: string[] }) => {
  const fromFlags = Boolean(flags.service?.length || flags.function?.length)
  const groups = fromFlags ? list(flags.service) : list(process.env.NEXUS_SERVICE ? [process.env.NEXUS_SERVICE] : undefined)
  const names = fromFlags ? list(flags.function) : list(process.env.NEXUS_FUNCTION ? [process.env.NEXUS_FUNCTION] : undefined)
  const knownGroups = [...new Set(functions.map((f) => f.group as string))]
  const knownNames = functions.map((f) => f.name as string)
  for (const g of groups ?? [])
    if (!knownGroups.includes(g))
      throw new ConfigError(fromFlags ? '--service' : 'NEXUS_SERVICE', `unknown service group "${g}" (one of ${knownGroups.join(', ')})`)
  for (const n of names ?? [])
    if (!knownNames.includes(n))
      throw new ConfigError(fromFlags ? '--function' : 'NEXUS_FUNCTION', `unknown function "${n}" (see workers.config.ts)`)
  return { groups, names }
}

const main = async () => {
  let host: NodeHost
  try {
    const { values } = parseArgs({
      options: {
        service: { type: 'string', multiple: true },
        function: { type: 'string', multiple: true },
      },
      allowPositionals: false,
    })
    const { groups, names } = selection(values)
    host = await startNodeHost({ groups: groups as never, functions: names })
  } catch (err) {
    // One line naming what is wrong; no stack for a configuration mistake.
    const message = err instanceof ConfigError ? err.message : (err as Error).message
    process.stderr.write(`nexus: cannot start: ${message}\n`)
    process.exit(1)
  }
  const { log } = host.services
  log.info('NEXUS listening', { url: host.url, functions: host.served.map((f) => f.name) })

  const shutdown = (signal: string) => {
    log.info('draining', { signal })
    const force = setTimeout(() => process.exit(1), 30_000)
    force.unref()
    host
      .close()
      .then(() => {
        log.info('stopped')
        process.exit(0)
      })
      .catch((err) => {
        log.error('shutdown failed', { err })
        process.exit(1)
      })
  }
  process.once('SIGTERM', () => shutdown('SIGTERM'))
  process.once('SIGINT', () => shutdown('SIGINT'))
}

void main()
