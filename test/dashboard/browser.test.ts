/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core): sign-in, a command going
 * queued → dispatched → completed live, an agent going offline, the event feed resuming after the
 * server dropped it, user text shown as text, keyboard use, the gateway's admin tools, health; and the
 * screenshots of every view at laptop and phone size (test-results/screenshots/).
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signWithServerKey, withSql } from '../support/auth-forge.ts'
import { bearer, createUser, loginAs, RUNTIMES, startTestHost, TEST_ADMIN_PASSWORD, TEST_ADMIN_USERNAME, type Runtime, type TestHost } from '../support/harness.ts'
import { eventually } from '../support/gateway.ts'
import { startOllamaDouble, type OllamaDouble } from '../support/ollama-double.ts'
import { freePort } from '../support/process.ts'
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts'
import { browserSkipReason, LAPTOP, launchChromium, openPage, PHONE, signIn, texts, type Watched } from './browser.ts'

const SHOTS = join(import.meta.dirname, '..', '..', 'test-results', 'screenshots')
const uid = () => Math.random().toString(36).slice(2, 8)
const LONG = 120_000

if (browserSkipReason) {
  if (process.env.CI) {
    describe('dashboard in Chromium', () => {
      it('needs Chromium in CI', () => {
        throw new Error(browserSkipReason)
      })
    })
  } else {
    console.warn(`\n  ${browserSkipReason}\n`)
    describe.skip(`dashboard in Chromium (${browserSkipReason})`, () => {
      it('skipped', () => undefined)
    })
  }
} else {
  for (const runtime of RUNTIMES) suite(runtime)
  deployedApart()
}

function suite(runtime: Runtime) {
  describe(`dashboard in Chromium [${runtime}]`, () => {
    let host: TestHost
    let proxy: TcpProxy
    let ollama: OllamaDouble
    let browser: Browser
    /** The page's origin: through a TCP proxy the test can cut, as a server dropping every connection. */
    let base: string
    let agentToken: string
    let operatorToken: string
    const open: Watched[] = []

    const page = async (viewport = LAPTOP) => {
      const w = await openPage(browser, viewport)
      open.push(w)
      return w
    }
    const asAdmin = async (viewport = LAPTOP) => {
      const w = await page(viewport)
      await signIn(w.page, base, TEST_ADMIN_USERNAME, TEST_ADMIN_PASSWORD)
      return w
    }
    const api = (method: string, path: string, token: string, body?: unknown) => host.json(method, path, body, bearer(token))
    const registerAgent = async (agent_id: string, name?: string, capabilities: string[] = []) => {
      const res = await api('POST', '/api/v1/agents/register', agentToken, { agent_id, name, capabilities })
      expect(res.status).toBe(201)
    }
    /** Nothing the dashboard must never do happened on this page. */
    const clean = (w: Watched) => {
      expect(w.dialogs, 'dialogs').toEqual([])
      expect(w.problems, 'script errors and policy violations').toEqual([])
    }

    beforeAll(async () => {
      ollama = await startOllamaDouble()
      host = await startTestHost(runtime, { env: { NEXUS_AGENT_TTL: '3', OLLAMA_BASE_URL: ollama.url } })
      proxy = await startTcpProxy(host.url)
      base = proxy.via(host.url).replace(/\/$/, '')
      browser = await launchChromium()
      agentToken = await loginAs(host, 'agent')
      operatorToken = await loginAs(host, 'operator')
    }, LONG)

    afterAll(async () => {
      for (const w of open) await w.close().catch(() => undefined)
      await browser?.close()
      await proxy?.close()
      await host?.close()
      await ollama?.close()
    })

    it('signs in, says plainly when the password is wrong, and signs out (the token is revoked)', async () => {
      const w = await page()
      const { page: p } = w
      await p.goto(`${base}/`)
      await p.getByLabel('Username').fill(TEST_ADMIN_USERNAME)
      await p.getByLabel('Password').fill('not the password')
      await p.getByRole('button', { name: 'Sign in' }).click()
      await p.getByRole('alert').filter({ hasText: 'Wrong username or password.' }).waitFor()
      await p.getByLabel('Password').fill(TEST_ADMIN_PASSWORD)
      await p.getByRole('button', { name: 'Sign in' }).click()
      await p.locator('.topbar').waitFor()
      expect(await p.locator('.who-name').textContent()).toBe(TEST_ADMIN_USERNAME)
      const token = await p.evaluate(() => sessionStorage.getItem('nexus.token'))
      expect(token).toMatch(/^ey/)
      expect((await api('GET', '/api/v1/auth/me', token!)).status).toBe(200)
      await p.getByRole('button', { name: 'Sign out' }).click()
      await p.getByText('You are signed out.').waitFor()
      expect(await p.evaluate(() => sessionStorage.getItem('nexus.token'))).toBeNull()
      expect((await api('GET', '/api/v1/auth/me', token!)).status).toBe(401)
      clean(w)
    }, LONG)

    it('issues a command and sees it move queued → dispatched → completed live, without a reload; opens it', async () => {
      const agentId = `worker-${uid()}`
      await registerAgent(agentId, 'Worker', ['analysis'])
      const w = await asAdmin()
      const { page: p } = w
      await p.getByRole('link', { name: 'Commands' }).click()
      await p.evaluate(() => ((window as unknown as { marker: number }).marker = 42))
      const text = `Summarize the logs ${uid()}`
      await p.getByLabel('Command', { exact: true }).fill(text)
      // The agent registered after the page loaded: it reached the picker live.
      await p.getByLabel('Send to').selectOption(agentId)
      await p.getByRole('button', { name: 'Send command' }).click()
      const row = p.locator('tbody tr', { hasText: text })
      await row.locator('.badge', { hasText: /^queued$/ }).waitFor()

      const claimed = await api('POST', `/api/v1/agents/${agentId}/commands/claim`, agentToken)
      expect(claimed.status).toBe(200)
      expect(claimed.body.text).toBe(text)
      await row.locator('.badge', { hasText: /^dispatched$/ }).waitFor()
      const done = await api('POST', `/api/v1/commands/${claimed.body.command_id}/complete`, agentToken, { result: 'All 12 files summarized', data: { files: 12 } })
      expect(done.status).toBe(200)
      await row.locator('.badge', { hasText: /^completed$/ }).waitFor()
      expect(await p.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42) // never reloaded

      await row.getByRole('link').click()
      await p.locator('#command-text').waitFor()
      expect(await p.locator('#command-text').textContent()).toBe(text)
      expect(await p.locator('#command-result').textContent()).toBe('All 12 files summarized')
      expect(JSON.parse((await p.locator('#command-data').textContent())!)).toEqual({ files: 12 })
      await p.locator('#command-events li').nth(2).waitFor()
      expect(await texts(p, '#command-events li strong')).toEqual(['created', 'dispatched', 'completed'])
      expect(await p.locator('.timing').count()).toBe(3)

      // The filters narrow the list (by status, by agent).
      await p.getByRole('link', { name: '← All commands' }).click()
      await p.getByLabel('Agent', { exact: true }).selectOption(agentId)
      await p.locator('tbody tr').first().waitFor()
      expect(await p.locator('tbody tr').count()).toBe(1)
      await p.getByLabel('Status').selectOption('queued')
      await p.getByText('No command matches these filters.').waitFor()
      expect(p.url()).toContain(`agent=${agentId}`)
      clean(w)
    }, LONG)

    it('shows user-typed HTML as text — command, agent name, result, data, event payload — and no dialog opens', async () => {
      const agentId = `xss-${uid()}`
      const agentName = `<img src=x onerror=alert('agent')>`
      await registerAgent(agentId, agentName)
      const w = await asAdmin()
      const { page: p } = w
      await p.locator('tbody tr', { hasText: agentName }).waitFor()
      await p.getByRole('link', { name: 'Commands' }).click()
      const text = '<img src=x onerror=alert(1)>'
      await p.getByLabel('Command', { exact: true }).fill(text)
      await p.getByLabel('Send to').selectOption(agentId)
      await p.getByRole('button', { name: 'Send command' }).click()
      const row = p.locator('tbody tr', { hasText: text })
      await row.waitFor()
      const claimed = await api('POST', `/api/v1/agents/${agentId}/commands/claim`, agentToken)
      const result = `<script>alert(2)</script><img src=x onerror=alert(3)>`
      await api('POST', `/api/v1/commands/${claimed.body.command_id}/complete`, agentToken, { result, data: { html: '<b onmouseover=alert(4)>x</b>' } })
      await row.locator('.badge', { hasText: /^completed$/ }).waitFor()
      expect((await row.locator('.cmd-link').textContent())?.trim()).toBe(text)
      await row.getByRole('link').click()
      await p.locator('#command-result').waitFor()
      expect(await p.locator('#command-text').textContent()).toBe(text)
      await p.locator('#command-result', { hasText: 'alert(2)' }).waitFor()
      expect(await p.locator('#command-result').textContent()).toBe(result)
      expect(await p.locator('#command-data').textContent()).toContain('<b onmouseover=alert(4)>x</b>')

      await api('POST', '/api/v1/events', operatorToken, { type: 'note.added', payload: { html: '<img src=x onerror=alert(5)>' } })
      await p.getByRole('link', { name: 'Events' }).click()
      await p.locator('.event', { hasText: 'note.added' }).first().waitFor()
      expect(await p.locator('.event', { hasText: 'note.added' }).first().locator('.event-summary').textContent()).toBe('{"html":"<img src=x onerror=alert(5)>"}')
      // Nothing was parsed as HTML: the page has no <img>, <script> or <b> the data could have made.
      expect(await p.locator('main img, main b, main script').count()).toBe(0)
      clean(w)
    }, LONG)

    it('shows an agent going offline when its heartbeats stop, live', async () => {
      const agentId = `fading-${uid()}`
      const w = await asAdmin()
      const { page: p } = w
      await registerAgent(agentId, 'Fading', ['short-lived'])
      const row = p.locator('tbody tr', { hasText: agentId })
      await row.locator('.badge', { hasText: /^online$/ }).waitFor()
      await p.evaluate(() => ((window as unknown as { marker: number }).marker = 7))
      // NEXUS_AGENT_TTL is 3 s here; the sweeper marks it offline and the agent_status event arrives.
      await row.locator('.badge', { hasText: /^offline$/ }).waitFor({ timeout: 20_000 })
      expect(await p.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(7)
      // A heartbeat brings it back, live too.
      expect((await api('POST', `/api/v1/agents/${agentId}/heartbeat`, agentToken)).status).toBe(200)
      await row.locator('.badge', { hasText: /^online$/ }).waitFor({ timeout: 20_000 })
      clean(w)
    }, LONG)

    it('shows "reconnecting" when the server drops the socket, then every missed event exactly once, in order', async () => {
      const w = await asAdmin()
      const { page: p } = w
      await p.getByRole('link', { name: 'Events' }).click()
      await p.locator('.live-pill', { hasText: /^Live$/ }).waitFor()
      const before = await api('POST', '/api/v1/events', operatorToken, { type: 'test.before', payload: { n: 0 } })
      await p.locator(`#event-${before.body.event_id}`).waitFor()

      await proxy.down()
      await p.locator('.live-pill', { hasText: 'Reconnecting' }).waitFor()
      await p.locator('.feed-state', { hasText: 'Reconnecting' }).waitFor()
      const missed: number[] = []
      for (let n = 1; n <= 5; n++) missed.push((await api('POST', '/api/v1/events', operatorToken, { type: 'test.missed', payload: { n } })).body.event_id)
      // Still down: nothing arrived, and the page says so.
      expect(await p.locator('.event[data-type="test.missed"]').count()).toBe(0)
      expect(await p.locator('.live-pill').textContent()).toBe('Reconnecting…')
      await proxy.up()
      await p.locator('.live-pill', { hasText: /^Live$/ }).waitFor({ timeout: 20_000 })
      for (const id of missed) await p.locator(`#event-${id}`).waitFor()
      const after = await api('POST', '/api/v1/events', operatorToken, { type: 'test.after', payload: { n: 6 } })
      await p.locator(`#event-${after.body.event_id}`).waitFor()

      // The feed (newest first) against the log: every id since `before`, each once, in order.
      const shown = (await p.locator('.event').evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.id)))).reverse()
      const log = await api('GET', `/api/v1/events?after=${before.body.event_id - 1}&limit=1000`, operatorToken)
      const logged = (log.body.events as Array<{ id: number }>).map((e) => e.id).filter((id) => id <= after.body.event_id)
      const since = shown.filter((id) => id >= before.body.event_id)
      expect(since).toEqual(logged)
      expect(new Set(shown).size).toBe(shown.length)
      expect([...shown].sort((a, b) => a - b)).toEqual(shown)
      expect(await texts(p, '.event[data-type="test.missed"] .event-summary')).toEqual([5, 4, 3, 2, 1].map((n) => `{"n":${n}}`))
      clean(w)
    }, LONG)

    it('says the session expired — when the token runs out while the page is open, and when it was revoked', async () => {
      const me = await api('GET', '/api/v1/auth/me', await loginAs(host, 'admin'))
      const now = Math.floor(Date.now() / 1000)
      const shortLived = await signWithServerKey(host, { claims: { sub: me.body.id, username: TEST_ADMIN_USERNAME, roles: ['admin'], iat: now, exp: now + 4 } })
      const w = await page()
      const { page: p } = w
      await p.addInitScript((token) => sessionStorage.setItem('nexus.token', token), shortLived)
      await p.goto(`${base}/`)
      await p.locator('.topbar').waitFor()
      await p.getByText('Your session expired. Sign in again.').waitFor({ timeout: 15_000 })
      expect(await p.getByLabel('Username').isVisible()).toBe(true)
      expect(await p.evaluate(() => sessionStorage.getItem('nexus.token'))).toBeNull()

      const user = await createUser(host, ['viewer'])
      const w2 = await page()
      await signIn(w2.page, base, user.username, user.password)
      // Once the page is done starting up, the next call it makes is the click's.
      await w2.page.locator('.live-pill', { hasText: /^Live$/ }).waitFor()
      const token = await w2.page.evaluate(() => sessionStorage.getItem('nexus.token'))
      expect((await api('POST', '/api/v1/auth/logout', token!)).status).toBe(204)
      await w2.page.getByRole('button', { name: 'Refresh' }).click()
      await w2.page.getByText('Your session was ended (signed out elsewhere). Sign in again.').waitFor()
      clean(w)
      clean(w2)
    }, LONG)

    it('works from the keyboard alone, with labels on every control and a visible focus ring', async () => {
      const w = await page()
      const { page: p } = w
      await p.goto(`${base}/`)
      await p.getByLabel('Username').waitFor()
      // The username field has the focus on arrival.
      await p.keyboard.type(TEST_ADMIN_USERNAME)
      await p.keyboard.press('Tab')
      await p.keyboard.type(TEST_ADMIN_PASSWORD)
      await p.keyboard.press('Enter')
      await p.locator('.topbar').waitFor()
      const focused = () => p.evaluate(() => document.activeElement?.textContent?.trim() ?? '')
      await p.keyboard.press('Tab')
      expect(await focused()).toBe('Skip to content')
      let steps = 0
      while ((await focused()) !== 'Commands' && steps++ < 10) await p.keyboard.press('Tab')
      expect(await focused()).toBe('Commands')
      const ring = await p.evaluate(() => {
        const s = getComputedStyle(document.activeElement!)
        return { style: s.outlineStyle, width: parseFloat(s.outlineWidth) }
      })
      expect(ring.style).not.toBe('none')
      expect(ring.width).toBeGreaterThanOrEqual(2)
      await p.keyboard.press('Enter')
      await p.waitForFunction(() => document.activeElement?.tagName === 'H1' && document.activeElement.textContent === 'Commands')
      const unlabeled = await p.evaluate(() =>
        [...document.querySelectorAll('input, select, textarea')].filter((el) => !(el as HTMLInputElement).labels?.length && !el.getAttribute('aria-label')).length,
      )
      expect(unlabeled).toBe(0)
      // Into the form: type a command and send it with Ctrl+Enter.
      steps = 0
      while ((await p.evaluate(() => document.activeElement?.tagName)) !== 'TEXTAREA' && steps++ < 20) await p.keyboard.press('Tab')
      const text = `typed without a mouse ${uid()}`
      await p.keyboard.type(text)
      await p.keyboard.press('Control+Enter')
      // Routed with no rule: the page says why, in an alert, and keeps the text.
      await p.getByRole('alert').filter({ hasText: 'No routing rule matches this command' }).waitFor()
      clean(w)
    }, LONG)

    it('gateway: models, aliases, usage charts per model and per key, a key shown once then revoked, a signing key rotated', async () => {
      const admin = await loginAs(host, 'admin')
      const key = await api('POST', '/api/v1/gateway/keys', admin, { name: 'reporting-bot' })
      expect(key.status).toBe(201)
      await seedUsage(host, key.body.id)
      const w = await asAdmin()
      const { page: p } = w
      await p.getByRole('link', { name: 'Gateway' }).click()
      await p.locator('td', { hasText: 'qwen2.5:0.5b' }).first().waitFor()
      await p.locator('td', { hasText: 'claude-3-5-sonnet' }).first().waitFor()
      await p.locator('.chart-svg rect').first().waitFor()
      expect(await texts(p, '.chart:nth-of-type(1) .legend-name')).toEqual(expect.arrayContaining(['gpt-4o', 'llama3.2:3b']))
      expect(await texts(p, '.chart:nth-of-type(2) .legend-name')).toEqual(expect.arrayContaining(['reporting-bot']))
      await p.getByLabel('Measure').selectOption('tokens')
      await p.locator('.chart .legend-total', { hasText: 'tokens' }).first().waitFor()

      await p.getByLabel('Name', { exact: true }).fill('ci-runner')
      await p.getByRole('button', { name: 'Create key' }).click()
      const secret = (await p.locator('#new-key-secret').textContent())!
      expect(secret).toMatch(/^nx-[A-Za-z0-9_-]{43}$/)
      expect((await host.json('GET', '/v1/models', undefined, bearer(secret))).status).toBe(200)
      await p.getByRole('button', { name: 'Done, hide it' }).click()
      expect(await p.locator('#new-key-secret').count()).toBe(0)
      const row = p.locator('tr', { hasText: 'ci-runner' })
      await row.waitFor()
      expect(await row.textContent()).not.toContain(secret)
      await row.getByRole('button', { name: 'Revoke' }).click()
      await row.getByRole('button', { name: 'Confirm revoke' }).click()
      await p.locator('tr', { hasText: 'ci-runner' }).locator('.badge', { hasText: 'revoked' }).waitFor()
      // Other workers (on workerd, each has its own cache) forget a revoked key within the key cache's 5 s.
      await eventually(async () => (await host.json('GET', '/v1/models', undefined, bearer(secret))).status === 401, 15_000, 250)

      await p.getByRole('button', { name: 'Rotate signing key' }).click()
      await p.getByRole('button', { name: 'Confirm rotation' }).click()
      const notice = p.locator('.notice', { hasText: 'New tokens are now signed with' })
      await notice.waitFor()
      const kid = (await notice.locator('.mono').textContent())!
      await p.locator('.kids li', { hasText: kid }).waitFor()
      clean(w)
    }, LONG)

    it('health: the database, the bus and Ollama, refreshed on its own', async () => {
      const w = await page()
      const { page: p } = w
      // Playwright's clock, installed before the page loads, runs at the real pace until fastForward below.
      await p.clock.install()
      await signIn(p, base, TEST_ADMIN_USERNAME, TEST_ADMIN_PASSWORD)
      await p.getByRole('link', { name: 'Health' }).click()
      for (const name of ['database', 'bus', 'ollama']) await p.locator(`[data-check="${name}"] .badge`, { hasText: 'OK' }).first().waitFor()
      await ollama.stop()
      try {
        // No click: the page checks again by itself, on its 10 s timer, which the clock now jumps past
        // (without the jump the test works the same, 10 s slower).
        await p.clock.fastForward(11_000)
        await p.locator('[data-check="ollama"] .badge', { hasText: 'Down' }).first().waitFor({ timeout: 20_000 })
        await p.locator('.overall', { hasText: 'Degraded' }).waitFor()
      } finally {
        await ollama.start()
      }
      clean(w)
    }, LONG)

    it('viewers read everything but get no admin tools and no command form', async () => {
      const viewer = await createUser(host, ['viewer'])
      const w = await page()
      const { page: p } = w
      await signIn(p, base, viewer.username, viewer.password)
      await p.getByRole('link', { name: 'Commands' }).click()
      await p.getByText('issuing them needs the operator role').waitFor()
      await p.getByRole('link', { name: 'Gateway' }).click()
      await p.getByText('shown to admins').waitFor()
      expect(await p.getByRole('button', { name: 'Rotate signing key' }).count()).toBe(0)
      clean(w)
    }, LONG)

    if (runtime === 'node')
      it('writes screenshots of every view at laptop and phone size', async () => {
        mkdirSync(SHOTS, { recursive: true })
        const agentId = `atlas-${uid()}`
        await registerAgent(agentId, 'Atlas', ['analysis', 'reports'])
        const scoutId = `scout-${uid()}`
        await registerAgent(scoutId, 'Scout', ['search', 'web'])
        const cmd = await api('POST', '/api/v1/commands', operatorToken, { text: 'Analyze the Q3 sales data and list the anomalies by region', agent_id: agentId })
        await api('POST', `/api/v1/agents/${agentId}/commands/claim`, agentToken)
        await api('POST', `/api/v1/commands/${cmd.body.command_id}/complete`, agentToken, {
          result: 'Found 3 anomalies: EMEA returns doubled in August; APAC revenue booked twice on 14 Sep; one negative invoice in LATAM.',
          data: { anomalies: 3, regions: ['EMEA', 'APAC', 'LATAM'], confidence: 0.92 },
        })
        await api('POST', '/api/v1/commands', operatorToken, { text: 'Draft the weekly status report', agent_id: agentId })
        for (const [label, viewport] of [['laptop', LAPTOP], ['phone', PHONE]] as const) {
          const w = await page(viewport)
          const { page: p } = w
          const shot = (name: string) => p.screenshot({ path: join(SHOTS, `${name}-${label}.png`), fullPage: true })
          await p.goto(`${base}/`)
          await p.getByLabel('Username').waitFor()
          await shot('login')
          await signIn(p, base, TEST_ADMIN_USERNAME, TEST_ADMIN_PASSWORD)
          // Agents with a heartbeat just now (NEXUS_AGENT_TTL is 3 s here), beside the ones gone quiet.
          for (const id of [agentId, scoutId]) await api('POST', `/api/v1/agents/${id}/heartbeat`, agentToken)
          await p.locator('tbody tr', { hasText: scoutId }).locator('.badge', { hasText: /^online$/ }).waitFor()
          await shot('agents')
          await p.getByRole('link', { name: 'Commands' }).click()
          await p.locator('tbody tr').first().waitFor()
          await shot('commands')
          await p.goto(`${base}/#/commands/${cmd.body.command_id}`)
          await p.locator('#command-events li').nth(2).waitFor()
          await shot('command-detail')
          await p.getByRole('link', { name: 'Events' }).click()
          await p.locator('.event').first().waitFor()
          await shot('events')
          await p.getByRole('link', { name: 'Gateway' }).click()
          await p.locator('.chart-svg rect').first().waitFor()
          await p.locator('.kids li').first().waitFor()
          await shot('gateway')
          await p.getByRole('link', { name: 'Health' }).click()
          await p.locator('.health-card').nth(2).waitFor()
          await shot('health')
          clean(w)
          await w.close()
        }
      }, LONG)
  })
}

/** The dashboard deployed alone (its own host and origin), in front of the API on another origin. */
function deployedApart() {
  describe('dashboard in Chromium, deployed apart from the API [node]', () => {
    let api: TestHost
    let dash: TestHost
    let browser: Browser
    const pages: Watched[] = []

    beforeAll(async () => {
      const port = await freePort()
      const dashOrigin = `http://127.0.0.1:${port}`
      api = await startTestHost('node', { env: { NEXUS_CORS_ORIGINS: dashOrigin } })
      dash = await startTestHost('node', { groups: ['dashboard'], env: { PORT: String(port), NEXUS_DASHBOARD_API_BASE: api.url } })
      browser = await launchChromium()
    }, LONG)

    afterAll(async () => {
      for (const w of pages) await w.close().catch(() => undefined)
      await browser?.close()
      await dash?.close()
      await api?.close()
    })

    it('signs in against the API base, lists agents live over the cross-origin socket, and reads health', async () => {
      expect(new URL(dash.url).port).not.toBe(new URL(api.url).port)
      const w = await openPage(browser)
      pages.push(w)
      await signIn(w.page, dash.url, TEST_ADMIN_USERNAME, TEST_ADMIN_PASSWORD)
      await w.page.locator('.live-pill', { hasText: /^Live$/ }).waitFor()
      const agentId = `remote-${uid()}`
      const agent = await loginAs(api, 'agent')
      expect((await api.json('POST', '/api/v1/agents/register', { agent_id: agentId, name: 'Remote' }, bearer(agent))).status).toBe(201)
      await w.page.locator('tbody tr', { hasText: agentId }).locator('.badge', { hasText: /^online$/ }).waitFor()
      await w.page.getByRole('link', { name: 'Health' }).click()
      await w.page.locator('[data-check="database"] .badge', { hasText: 'OK' }).waitFor()
      expect(w.dialogs).toEqual([])
      expect(w.problems).toEqual([])
    }, LONG)
  })
}

/** Usage rows over the last day, as the gateway's usage log would hold them after real traffic. */
const seedUsage = async (host: TestHost, keyId: string) => {
  const models = ['gpt-4o', 'llama3.2:3b', 'claude-3-5-sonnet', 'gemini-2.5-flash']
  const rows: string[] = []
  for (let h = 0; h < 24; h++) {
    for (let m = 0; m < models.length; m++) {
      const n = (h * 7 + m * 3) % 5
      for (let i = 0; i < n; i++) rows.push(`(now() - interval '${h} hours ${i * 7} minutes', ${m % 2 === 0 ? `'${keyId}'` : 'null'}, '${models[m]}', ${40 + i * 13}, ${120 + h * 3}, ${300 + i * 40}, 200)`)
    }
  }
  await withSql(host, (sql, table) =>
    sql.unsafe(`insert into ${table('gateway_usage')} (created_at, key_id, model, prompt_tokens, completion_tokens, latency_ms, status) values ${rows.join(', ')}`),
  )
}

