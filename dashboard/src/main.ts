/** The NEXUS Dashboard: the session, the shell (header, navigation, live state), the router, and the live event plumbing. */
import { ApiFailure, createApi } from './api.ts'
import type { Ctx, View } from './context.ts'
import { h, replace, setText } from './dom.ts'
import { createLive, findNewestEventId, type Live, type LiveEvent, type LiveStatus } from './live.ts'
import { claimsOf, clearToken, loadToken, saveToken, type SessionUser } from './session.ts'
import { Store } from './store.ts'
import type { Agent, Command } from './types.ts'
import { announce, refreshTimes } from './ui.ts'
import { agentsView } from './views/agents.ts'
import { commandDetailView } from './views/command-detail.ts'
import { commandsView } from './views/commands.ts'
import { eventsView } from './views/events.ts'
import { gatewayView } from './views/gateway.ts'
import { healthView } from './views/health.ts'
import { loginView, type LoginMessage } from './views/login.ts'

const HISTORY = 50
const MAX_TIMER = 2 ** 31 - 1

const root = document.getElementById('app')!
const apiBase = document.querySelector<HTMLMetaElement>('meta[name="nexus-api-base"]')?.content ?? ''

interface Session {
  token: string
  user: SessionUser
  store: Store
  live: Live
  view?: View
  timers: Array<() => void>
  newest?: { id: number; at: number }
}
let session: Session | undefined

const endedMessage = (failure?: ApiFailure): LoginMessage => {
  if (failure?.code === 'TOKEN_REVOKED') return { kind: 'warn', text: 'Your session was ended (signed out elsewhere). Sign in again.' }
  if (!failure || /expired/i.test(`${failure.code} ${failure.message}`)) return { kind: 'warn', text: 'Your session expired. Sign in again.' }
  return { kind: 'warn', text: 'Your session is no longer valid. Sign in again.' }
}

const api = createApi(apiBase, () => session?.token, (failure) => endSession(endedMessage(failure)))

// ---- routes ----

const NAV = [
  ['agents', 'Agents'],
  ['commands', 'Commands'],
  ['events', 'Events'],
  ['gateway', 'Gateway'],
  ['health', 'Health'],
] as const

const parseRoute = () => {
  const raw = location.hash.replace(/^#\/?/, '')
  const [path = '', search = ''] = raw.split('?')
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent)
  return { section: parts[0] ?? 'agents', id: parts[1], query: new URLSearchParams(search) }
}

const viewFor = (ctx: Ctx): View => {
  const { section, id, query } = parseRoute()
  switch (section) {
    case 'commands':
      return id ? commandDetailView(ctx, id) : commandsView(ctx, query)
    case 'events':
      return eventsView(ctx)
    case 'gateway':
      return gatewayView(ctx)
    case 'health':
      return healthView(ctx)
    default:
      return agentsView(ctx)
  }
}

// ---- the shell ----

const livePill = h('span', { class: 'live-pill state-idle', role: 'status' })
const liveRetry = h('button', { type: 'button', class: 'btn small ghost', hidden: true }, 'Retry')
const main = h('main', { id: 'main', tabindex: '-1' })

const renderLive = (st: LiveStatus) => {
  const text = { idle: 'Offline', connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', stopped: 'Offline' }[st.state]
  setText(livePill, text)
  livePill.className = `live-pill state-${st.state}`
  livePill.title = st.state === 'reconnecting' ? `Attempt ${st.attempt}; resumes after event #${st.lastId}` : `Last event #${st.lastId}`
  liveRetry.hidden = st.state !== 'reconnecting'
}

const renderShell = (s: Session) => {
  const nav = h(
    'nav',
    { class: 'nav', 'aria-label': 'Main' },
    h('ul', null, NAV.map(([key, label]) => h('li', null, h('a', { href: `#/${key}`, 'data-nav': key }, label)))),
  )
  const skip = h('a', { href: '#main', class: 'skip' }, 'Skip to content')
  skip.addEventListener('click', (e) => {
    e.preventDefault()
    main.focus()
  })
  const signOut = h('button', { type: 'button', class: 'btn ghost', onclick: () => void logout() }, 'Sign out')
  liveRetry.onclick = () => s.live.retryNow()
  replace(
    root,
    skip,
    h(
      'header',
      { class: 'topbar' },
      h(
        'div',
        { class: 'topbar-inner' },
        h('div', { class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }), h('span', null, 'NEXUS'), h('span', { class: 'brand-sub' }, 'Dashboard')),
        nav,
        h(
          'div',
          { class: 'session' },
          h('span', { class: 'live' }, livePill, liveRetry),
          h('span', { class: 'who', title: `Signed in as ${s.user.username}` }, h('span', { class: 'who-name' }, s.user.username), h('span', { class: 'who-role' }, s.user.roles.join(', ') || 'no role')),
          signOut,
        ),
      ),
    ),
    main,
  )
  root.classList.remove('boot')
}

const showRoute = (focus: boolean) => {
  const s = session
  if (!s) return
  s.view?.unmount?.()
  const view = viewFor(ctxOf(s))
  s.view = view
  replace(main, view.el)
  document.title = `${view.title} · NEXUS`
  const { section } = parseRoute()
  for (const a of root.querySelectorAll<HTMLAnchorElement>('[data-nav]')) {
    if (a.dataset.nav === section || (section === '' && a.dataset.nav === 'agents')) a.setAttribute('aria-current', 'page')
    else a.removeAttribute('aria-current')
  }
  if (focus) view.el.querySelector<HTMLElement>('h1')?.focus()
}

// ---- events and live ----

const readEvents = async (after: number, types?: string[], limit = 100): Promise<LiveEvent[]> => {
  const qs = new URLSearchParams({ after: String(after), limit: String(limit) })
  if (types?.length) qs.set('type', types.join(','))
  return (await api.get<{ events: LiveEvent[] }>(`/api/v1/events?${qs}`)).events
}

const newestEventId = async (s: Session) => {
  if (s.newest && Date.now() - s.newest.at < 5000) return Math.max(s.newest.id, s.store.live.lastId)
  const id = await findNewestEventId(async (after) => (await readEvents(after, undefined, 1))[0])
  s.newest = { id, at: Date.now() }
  return Math.max(id, s.store.live.lastId)
}

const ctxOf = (s: Session): Ctx => ({
  api,
  store: s.store,
  user: s.user,
  retryLive: () => s.live.retryNow(),
  readEvents,
  newestEventId: () => newestEventId(s),
})

const fetching = new Set<string>()
const fetchMissing = (s: Session, missing: { command?: string; agent?: string }) => {
  const get = async (key: string, path: string, apply: (value: unknown, since: number) => void) => {
    if (fetching.has(key)) return
    fetching.add(key)
    try {
      const since = s.store.now()
      apply(await api.get(path), since)
    } catch {
      // gone or not visible: the feed still shows the event
    } finally {
      fetching.delete(key)
    }
  }
  if (missing.command) void get(`c:${missing.command}`, `/api/v1/commands/${encodeURIComponent(missing.command)}`, (c, since) => session === s && s.store.upsertCommands([c as Command], since))
  if (missing.agent) void get(`a:${missing.agent}`, `/api/v1/agents/${encodeURIComponent(missing.agent)}`, (a, since) => session === s && s.store.setAgents([...s.store.agents.values(), a as Agent], since))
}

const loadAgents = async (s: Session) => {
  try {
    const since = s.store.now()
    const { agents } = await api.get<{ agents: Agent[] }>('/api/v1/agents')
    if (session === s) s.store.setAgents(agents, since)
  } catch {
    // the agents view says so when it loads
  }
}

const startLive = async (s: Session) => {
  try {
    // The lists are read after the newest id is known and the socket resumes from it: every change
    // after that id arrives live and lands on lists at least that recent, so none is missed.
    const newest = await newestEventId(s)
    const [history] = await Promise.all([readEvents(Math.max(0, newest - HISTORY), undefined, HISTORY), loadAgents(s)])
    if (session !== s) return
    s.store.addHistory(history.filter((e) => e.id <= newest))
    s.live.start(newest)
  } catch (err) {
    if (session !== s) return
    // The log could not be read (the server is down?): try the socket from the present, and retry later.
    if (!(err instanceof ApiFailure && err.status === 401)) s.live.start(s.store.live.lastId)
  }
}

const startSession = (token: string) => {
  const user = claimsOf(token)
  if (!user) return showLogin({ kind: 'error', text: 'That session could not be read. Sign in again.' })
  if (user.exp * 1000 <= Date.now()) {
    clearToken()
    return showLogin(endedMessage())
  }
  saveToken(token)
  const store = new Store()
  let previous: LiveStatus['state'] = 'idle'
  const live: Live = createLive({
    url: (after) => api.wsUrl(`/api/v1/events/ws?${new URLSearchParams({ token, after: String(after) })}`),
    onEvent: (ev) => fetchMissing(s, store.apply(ev)),
    onStatus: (st) => {
      store.live = st
      renderLive(st)
      store.emit('live')
      if (st.state !== previous) {
        if (st.state === 'reconnecting' && previous === 'live') announce('Live feed lost; reconnecting')
        if (st.state === 'live' && previous === 'reconnecting') {
          announce('Live feed back')
          void loadAgents(s)
        }
        previous = st.state
      }
    },
    checkSession: async () => {
      try {
        await api.get('/api/v1/auth/me', { timeoutMs: 5000 })
        return true
      } catch (err) {
        return !(err instanceof ApiFailure && err.status === 401)
      }
    },
    onExpired: () => endSession(endedMessage()),
  })
  const s: Session = { token, user, store, live, timers: [] }
  session = s
  const expireIn = () => user.exp * 1000 - Date.now()
  const expiry = () => {
    if (expireIn() <= 0) return endSession(endedMessage())
    const t = setTimeout(expiry, Math.min(expireIn(), MAX_TIMER))
    s.timers.push(() => clearTimeout(t))
  }
  expiry()
  const ticker = setInterval(refreshTimes, 5000)
  const online = () => s.live.retryNow()
  const visible = () => document.visibilityState === 'visible' && s.live.retryNow()
  window.addEventListener('online', online)
  document.addEventListener('visibilitychange', visible)
  s.timers.push(
    () => clearInterval(ticker),
    () => window.removeEventListener('online', online),
    () => document.removeEventListener('visibilitychange', visible),
  )
  renderShell(s)
  renderLive(store.live)
  showRoute(false)
  // The server has the last word on the token (revoked, expired, or a user since disabled).
  void api.get('/api/v1/auth/me').catch(() => undefined)
  void loadAgents(s)
  void startLive(s)
}

function endSession(message: LoginMessage) {
  const s = session
  if (!s) return
  session = undefined
  s.live.stop()
  for (const stop of s.timers) stop()
  s.view?.unmount?.()
  clearToken()
  showLogin(message)
}

const logout = async () => {
  const s = session
  if (!s) return
  try {
    await api.post('/api/v1/auth/logout', undefined, { timeoutMs: 5000 })
  } catch {
    // Already over, or the server is away: the token is dropped here either way.
  }
  endSession({ kind: 'ok', text: 'You are signed out.' })
}

function showLogin(message?: LoginMessage) {
  document.title = 'Sign in · NEXUS'
  root.classList.remove('boot')
  replace(root, loginView(api, message, startSession))
}

window.addEventListener('hashchange', () => showRoute(true))

const token = loadToken()
if (token) startSession(token)
else showLogin()
