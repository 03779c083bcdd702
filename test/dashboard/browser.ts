/** Browser-test support: Debian's Chromium through playwright-core (never a downloaded browser), and a watch on what must not happen. */
import { existsSync } from 'node:fs'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'
export const chromiumPresent = existsSync(CHROMIUM)

/** Why the browser suites do not run here, or undefined when they do. In CI a missing browser is a failure, not a skip. */
export const browserSkipReason = chromiumPresent
  ? undefined
  : `${CHROMIUM} is absent: the dashboard's browser tests are skipped (apt-get install -y --no-install-recommends chromium)`

/** Headless Chromium with the flags of docs (STACK.md); playwright gives it a fresh temporary --user-data-dir. */
export const launchChromium = (): Promise<Browser> =>
  chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  })

export const LAPTOP = { width: 1366, height: 768 }
export const PHONE = { width: 390, height: 844 }

export interface Watched {
  context: BrowserContext
  page: Page
  /** Dialogs that opened (alert, confirm...): the dashboard never opens one. */
  dialogs: string[]
  /** Script errors, CSP and Trusted Types violations. */
  problems: string[]
  close(): Promise<void>
}

// Network failures (a server cut on purpose, a 401 or 503 the page handles) are logged by Chromium as
// "Failed to load resource"; they are expected. Anything about policies or uncaught errors is not.
const PROBLEM = /Content Security Policy|Refused to|TrustedHTML|TrustedScript|Trusted Type|Uncaught|SyntaxError|TypeError|ReferenceError/i

/** A fresh context and page whose dialogs, page errors and policy violations are recorded. */
export const openPage = async (browser: Browser, viewport = LAPTOP): Promise<Watched> => {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1, locale: 'en-US', timezoneId: 'UTC' })
  const page = await context.newPage()
  const dialogs: string[] = []
  const problems: string[] = []
  page.on('dialog', (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`)
    void d.dismiss().catch(() => undefined)
  })
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`))
  page.on('console', (msg) => {
    if (msg.type() === 'error' && PROBLEM.test(msg.text())) problems.push(`console: ${msg.text()}`)
  })
  return { context, page, dialogs, problems, close: () => context.close() }
}

/** Signs in through the login form. */
export const signIn = async (page: Page, base: string, username: string, password: string) => {
  await page.goto(`${base}/`)
  await page.getByLabel('Username').fill(username)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.locator('.topbar').waitFor()
}

/** The text of every element matching `selector`, trimmed. */
export const texts = (page: Page, selector: string) => page.locator(selector).allTextContents().then((all) => all.map((t) => t.trim()))
