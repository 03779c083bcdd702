/** Tasks a host runs once at start, after migrations (bootstrap data, keys). Each is idempotent. */
import { authStartupTask } from './auth/bootstrap.ts'
import type { Services } from './services.ts'

export interface StartupContext {
  /**
   * Shows an operator a one-time notice outside the JSON log stream (the generated admin password).
   * Defaults to stdout.
   */
  announce(text: string): void
}

export interface StartupTask {
  name: string
  run(services: Services, context: StartupContext): Promise<void>
}

export const startupTasks: StartupTask[] = [authStartupTask]

// console.log is stdout on Node; kept out of the JSON logger on purpose (see StartupContext.announce).
const defaultContext: StartupContext = { announce: (text) => console.log(text) }

/** Runs every task in order; a failing task stops start-up with its name in the error. */
export const runStartupTasks = async (services: Services, context: StartupContext = defaultContext): Promise<void> => {
  for (const task of startupTasks) {
    try {
      await task.run(services, context)
    } catch (err) {
      throw new Error(`start-up task "${task.name}" failed: ${(err as Error).message}`, { cause: err })
    }
  }
}
