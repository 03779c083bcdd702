/** Vitest: unit tests beside the code in lib/, integration tests in test/ run per runtime by the harness. */
import { configDefaults, defineConfig } from 'vitest/config'

/**
 * .ci/run runs the suite twice: embedded, then against the real PostgreSQL and Redis. Its second pass
 * sets NEXUS_TEST_SECOND_PASS=1 and leaves out these files, which ran in the first and cannot give
 * another result there: they reach no database or bus but the embedded or in-memory ones they start
 * themselves. The one exception is the dashboard in Chromium: the page is the same whatever stores
 * the data, and every API call and live stream it makes is tested on the real servers by other files.
 * A file that comes to use DATABASE_URL, REDIS_URL or the harness's hosts leaves this list.
 */
const sameOnEveryBackend = [
  'lib/ai/{egress,keys,limits,models-file,ndjson-guard,openai,pool,stream}.test.ts',
  'lib/auth/{config,passwords,rate-limit,seal}.test.ts',
  'lib/{env,log,metrics,router,sovereignty}.test.ts',
  'local-runtime/kek.test.ts',
  'local-runtime/node/{host,http-fetch,pglite,pglite-server}.test.ts',
  'test/dashboard/{browser,live,store}.test.ts',
  'test/deploy/{docs,manifests}.test.ts',
  'test/foundation/start.test.ts',
  'test/gateway/sovereignty.test.ts',
]

export default defineConfig({
  test: {
    include: ['lib/**/*.test.ts', 'local-runtime/**/*.test.ts', 'functions/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: [...configDefaults.exclude, ...(process.env.NEXUS_TEST_SECOND_PASS === '1' ? sameOnEveryBackend : [])],
    globalSetup: ['test/support/global-setup.ts'],
    pool: 'forks',
    // Two cores: two files at a time; each may start a Node host and a workerd host.
    maxWorkers: 2,
    testTimeout: 60_000,
    // In CI a failed test runs once more, so one timing hiccup on a busy 2-core machine does not turn the
    // run red. It is not hidden: .ci/run's summary names every test that passed only on its second try,
    // with the error of its first.
    retry: process.env.CI ? 1 : 0,
    // Starting a workerd host bundles every function: generous on a busy 2-core machine.
    hookTimeout: 300_000,
    teardownTimeout: 30_000,
  },
})
