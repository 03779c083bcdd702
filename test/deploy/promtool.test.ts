/**
 * A real /metrics response, after traffic on every part (auth, cortex, the gateway over the Ollama
 * double), passes Prometheus' own checker (promtool 2.42, Debian's prometheus package) through
 * scripts/check-metrics.sh, which waives only the lint rules the contract's fixed names break; and a
 * broken exposition fails it.
 */
import { execFile, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { bearer, describeRuntimes, loginAs } from '../support/harness.ts'
import { MASTER_KEY, readSse } from '../support/gateway.ts'
import { startOllamaDouble } from '../support/ollama-double.ts'

const root = join(import.meta.dirname, '..', '..')
const hasPromtool = spawnSync('promtool', ['--version']).status === 0
if (process.env.CI && !hasPromtool) throw new Error('CI must install promtool (Debian package prometheus)')

/** Runs scripts/check-metrics.sh on an exposition (asynchronously: the Node host under test lives in this process). */
const checkMetrics = (exposition: string) =>
  new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    const child = execFile('bash', [join(root, 'scripts', 'check-metrics.sh')], (err, stdout, stderr) =>
      resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    )
    child.stdin!.end(exposition)
  })

const double = await startOllamaDouble()
afterAll(() => double.close())

describe.skipIf(!hasPromtool)('promtool check metrics', () => {
  describeRuntimes(
    'on a real /metrics',
    (host, runtime) => {
      it('passes, waiving only the contract names, and has the contract metrics', { timeout: 60_000 }, async () => {
        const operator = await loginAs(host(), 'operator')
        const agent = await loginAs(host(), 'agent')
        await host().json('POST', '/api/v1/agents/register', { agent_id: 'metrics-agent' }, bearer(agent))
        await host().json('POST', '/api/v1/commands', { text: 'count me', agent_id: 'metrics-agent' }, bearer(operator))
        await host().json('GET', '/api/v1/commands/not-a-uuid', undefined, bearer(operator))
        await host().json('GET', '/nope')
        const whole = await host().json('POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }, bearer(MASTER_KEY))
        expect(whole.status).toBe(200)
        const streamed = await readSse(host(), { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }] })
        expect(streamed.status).toBe(200)

        // On workerd the metrics worker's isolate registers the HTTP metrics on its own first request, after
        // rendering: its first scrape lacks them (reported), so read the second.
        if (runtime === 'workerd') await (await host().fetch('/metrics')).text()
        const res = await host().fetch('/metrics')
        expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
        const text = await res.text()
        const checked = await checkMetrics(text)
        expect(checked.stderr).toBe('')
        expect(checked.status).toBe(0)
        // On workerd /metrics covers the metrics worker's own isolate (docs/RUNTIMES.md); on Node, the process.
        const names = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`)
        expect(names).toEqual(expect.arrayContaining(['cortex_request_count counter', 'cortex_response_time histogram', 'cortex_active_commands gauge', 'cortex_agent_count gauge']))
        if (runtime === 'node')
          expect(names).toEqual(
            expect.arrayContaining([
              'gateway_requests_total counter',
              'gateway_prompt_tokens_total counter',
              'gateway_completion_tokens_total counter',
              'gateway_time_to_first_token_seconds histogram',
            ]),
          )
        // Unwaived, the contract names are exactly what promtool objects to.
        const raw = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })
        expect(raw.status).toBe(3)
        expect(raw.stderr.trim().split('\n').sort()).toEqual(
          [
            'cortex_agent_count non-histogram and non-summary metrics should not have "_count" suffix',
            'cortex_request_count counter metrics should have "_total" suffix',
            'cortex_request_count non-histogram and non-summary metrics should not have "_count" suffix',
          ].sort(),
        )
      })
    },
    {
      env: { OLLAMA_BASE_URL: double.url, NEXUS_MASTER_KEY: MASTER_KEY },
      // The functions the traffic above uses (fewer workers to bundle and start on workerd).
      functions: ['metrics', 'health', 'auth-login', 'auth-users-create', 'cortex-agents', 'cortex-commands', 'gateway-chat-completions'],
    },
  )

  describe('on a broken exposition', () => {
    const good = ['# HELP cortex_request_count x', '# TYPE cortex_request_count counter', 'cortex_request_count{status="200"} 1']
    const contract = [
      '# HELP cortex_response_time x', '# TYPE cortex_response_time histogram', 'cortex_response_time_bucket{le="+Inf"} 1', 'cortex_response_time_sum 0.1', 'cortex_response_time_count 1',
      '# HELP cortex_active_commands x', '# TYPE cortex_active_commands gauge', 'cortex_active_commands 0',
      '# HELP cortex_agent_count x', '# TYPE cortex_agent_count gauge', 'cortex_agent_count 0',
    ]
    it.each([
      ['a value that is not a number', [...good, 'cortex_request_count{status="500"} lots', ...contract], /could not parse/],
      ['a second TYPE line', [...good, '# TYPE cortex_request_count gauge', ...contract], /could not parse/],
      ['an unwaived lint problem (a counter without _total)', [...good, ...contract, '# HELP other_requests x', '# TYPE other_requests counter', 'other_requests 1'], /other_requests counter metrics should have "_total" suffix/],
      ['a missing contract metric', [...good], /missing "# TYPE cortex_response_time histogram"/],
      ['nothing at all', [], /empty exposition/],
    ])('fails on %s', async (_what, lines, message) => {
      const res = await checkMetrics(lines.length ? `${lines.join('\n')}\n` : '')
      expect(res.status).toBe(1)
      expect(res.stderr).toMatch(message)
    })
    it('passes the same exposition without the fault', async () => {
      expect((await checkMetrics(`${[...good, ...contract].join('\n')}\n`)).status).toBe(0)
    })
  })
})
