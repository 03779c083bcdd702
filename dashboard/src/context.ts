/** What every view receives from the app shell, and what a view gives back. */
import type { Api } from './api.ts'
import type { LiveEvent } from './live.ts'
import type { SessionUser } from './session.ts'
import type { Store } from './store.ts'

export interface Ctx {
  api: Api
  store: Store
  user: SessionUser
  /** Reconnects the live feed at once, while it waits to retry. */
  retryLive(): void
  /** Reads the log (for a command's history): events after `after`, of these types. */
  readEvents(after: number, types?: string[], limit?: number): Promise<LiveEvent[]>
  /** The newest event id in the log (cached for a few seconds). */
  newestEventId(): Promise<number>
}

export interface View {
  el: HTMLElement
  title: string
  unmount?(): void
}

/** Runs `fn` every `ms` while the view is mounted and the tab is visible. */
export const every = (ms: number, fn: () => void): (() => void) => {
  const timer = setInterval(() => {
    if (document.visibilityState === 'visible') fn()
  }, ms)
  return () => clearInterval(timer)
}

/** A failure as one line for the page. */
export const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err))
