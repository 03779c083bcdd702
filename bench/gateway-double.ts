/**
 * The Ollama double of bench/gateway.ts, in a process of its own, as Ollama is: the load generator
 * reaches it across processes whether it calls it directly or through the gateway. Sends `{url}` over
 * IPC once it listens; `{delayMs}` sets its time to the first token (echoed back once set); exits on `{stop}`.
 */
import { startOllamaDouble } from '../test/support/ollama-double.ts'

const double = await startOllamaDouble()
double.record = false
double.defaultScript = { text: ['ok'] }
process.on('message', async (m: { stop?: true; delayMs?: number }) => {
  // The time to the first token, as a model takes it (0: the answer at once). Acknowledged once set.
  if (m.delayMs !== undefined) {
    double.defaultScript = { text: ['ok'], ...(m.delayMs > 0 ? { delayMs: m.delayMs } : {}) }
    process.send!({ delayMs: m.delayMs })
  }
  if (m.stop) {
    await double.close()
    process.exit(0)
  }
})
process.send!({ url: double.url })
