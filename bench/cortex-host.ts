/**
 * The host under test of bench/cortex.ts, in a process of its own: started from the environment the
 * parent passes in BENCH_HOST_ENV, it sends `{url, databaseUrl}` over IPC and stops on 'stop'.
 */
import { startNodeHost } from '../local-runtime/node/host.ts'

const env = JSON.parse(process.env.BENCH_HOST_ENV ?? '{}') as Record<string, string>
const host = await startNodeHost({ env, groups: ['auth', 'cortex', 'ops'] })
process.send!({ url: host.url, databaseUrl: host.databaseUrl })
process.on('message', (m) => {
  if (m !== 'stop') return
  void host.close().then(() => process.exit(0))
})
// Bounded like every bench: gone with its parent.
process.on('disconnect', () => void host.close().then(() => process.exit(0)))
