/** Vitest: unit tests beside the code in lib/, integration tests in test/ run per runtime by the harness. */
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['lib/**/*.test.ts', 'local-runtime/**/*.test.ts', 'functions/**/*.test.ts', 'test/**/*.test.ts'],
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
    reporters: process.env.CI ? ['default'] : ['default'],
  },
})
