/** Sign-in with the auth service; says plainly why when it fails or when a session ended. */
import { ApiFailure, type Api } from '../api.ts'
import { h, replace } from '../dom.ts'
import { field, notice } from '../ui.ts'

export interface LoginMessage {
  kind: 'error' | 'info' | 'ok' | 'warn'
  text: string
}

const failureText = (err: unknown): string => {
  if (!(err instanceof ApiFailure)) return 'Sign-in failed.'
  if (err.status === 401) return 'Wrong username or password.'
  if (err.status === 429) return `Too many attempts. Try again ${err.retryAfter ? `in ${err.retryAfter} seconds` : 'later'}.`
  if (err.status === 0) return `${err.message}. Check the connection and try again.`
  if (err.status === 400) return 'Enter a username and a password.'
  return `Sign-in failed: ${err.message}`
}

export const loginView = (api: Api, message: LoginMessage | undefined, onToken: (token: string) => void): HTMLElement => {
  const username = h('input', { type: 'text', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' })
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true })
  const submit = h('button', { type: 'submit', class: 'btn primary wide' }, 'Sign in')
  const status = h('div', { class: 'login-status' }, message ? notice(message.kind, message.text) : null)
  const form = h(
    'form',
    { class: 'login-form', novalidate: true, 'aria-labelledby': 'login-title' },
    status,
    field('Username', username),
    field('Password', password),
    submit,
  )
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    if (!username.value || !password.value) {
      replace(status, notice('error', 'Enter a username and a password.'))
      ;(username.value ? password : username).focus()
      return
    }
    submit.disabled = true
    submit.textContent = 'Signing in…'
    try {
      const res = await api.post<{ access_token: string }>('/api/v1/auth/login', { username: username.value, password: password.value }, { auth: false })
      password.value = ''
      onToken(res.access_token)
    } catch (err) {
      replace(status, notice('error', failureText(err)))
      password.value = ''
      password.focus()
    } finally {
      submit.disabled = false
      submit.textContent = 'Sign in'
    }
  })
  const el = h(
    'main',
    { class: 'login', id: 'main' },
    h(
      'div',
      { class: 'login-card' },
      h('div', { class: 'brand big' }, h('span', { class: 'logo', 'aria-hidden': 'true' }), h('span', null, 'NEXUS')),
      h('h1', { id: 'login-title' }, 'Sign in to the dashboard'),
      h('p', { class: 'muted small' }, 'Agents, commands, events and the AI gateway, live.'),
      form,
    ),
  )
  queueMicrotask(() => username.focus())
  return el
}
