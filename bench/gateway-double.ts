/**
 * The Ollama double of bench/gateway.ts, in a process of its own, as Ollama is: the load generator
 * reaches it across processes whether it calls it directly or through the gateway. Sends `{url}` over
 * IPC once it listens; exits on `{stop}`.
 */
import { startOllamaDouble } from '../test/support/ollama-double.ts'

const double = await startOllamaDouble()
double.record = false
double.defaultScript = { text: ['ok'] }
process.on('message', async (m: { stop?: true }) => {
  if (m.stop) {
    await double.close()
    process.exit(0)
  }
})
process.send!({ url: double.url })
