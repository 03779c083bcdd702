// CI's summary of the vitest JSON reports in a directory: counts per run, then every failed test and
// every flaky one (passed only on its retry, see vitest.config.ts), each with the first lines of its
// error, since the log above it may be cut short. Exits 1 when no test ran at all.
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'

const dir = process.argv[2]
const firstLines = (messages) =>
  messages
    .join('\n')
    .split('\n')
    .filter((l) => !/node_modules\/|<anonymous>/.test(l))
    .slice(0, 8)
    .map((l) => `    ${l}`)
    .join('\n')

let passed = 0
let failed = 0
let skipped = 0
let flaky = 0
for (const name of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
  const report = JSON.parse(readFileSync(join(dir, name), 'utf8'))
  const skippedHere = report.numPendingTests + (report.numTodoTests ?? 0)
  passed += report.numPassedTests
  failed += report.numFailedTests
  skipped += skippedHere
  console.log(`${name}: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skippedHere} skipped`)
  for (const file of report.testResults) {
    const where = relative(process.cwd(), file.name)
    // A file that failed outside its tests (a beforeAll hook, an import) has a message of its own.
    if (file.status === 'failed' && file.message) console.log(`  FAILED ${where}\n${firstLines([file.message])}`)
    for (const test of file.assertionResults) {
      const errors = test.failureMessages ?? []
      if (test.status === 'failed') console.log(`  FAILED ${where} > ${test.fullName}\n${firstLines(errors)}`)
      // vitest keeps a retried test's earlier errors: passed with errors means passed on its retry.
      else if (test.status === 'passed' && errors.length > 0) {
        flaky++
        console.log(`  FLAKY (passed on retry) ${where} > ${test.fullName}\n${firstLines(errors)}`)
      }
    }
  }
}
console.log(`ci: ${passed} passed, ${failed} failed, ${skipped} skipped, ${flaky} flaky`)
if (passed === 0) {
  console.error('no test ran')
  process.exit(1)
}
