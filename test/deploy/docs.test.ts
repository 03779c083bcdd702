/**
 * The deployment docs stay true: docs/API_REFERENCE.md is what `npm run gen:docs` makes from the OpenAPI
 * description, and every relative link in the docs this issue owns points at a file (and heading) that exists.
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { API_REFERENCE, renderApiReference } from '../../scripts/gen-docs.ts'

const root = join(import.meta.dirname, '..', '..')
const DOCS = ['docs/ARCHITECTURE.md', 'docs/DEPLOYMENT_GUIDE.md', 'docs/QUICKSTART.md', 'docs/API_REFERENCE.md']

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
const anchors = (markdown: string) =>
  new Set([
    ...[...markdown.matchAll(/^#{1,6} (.+)$/gm)].map((m) =>
      m[1]!
        .toLowerCase()
        .replace(/[^a-z0-9 _-]/g, '')
        .replace(/ /g, '-'),
    ),
    ...[...markdown.matchAll(/<a id="([^"]+)"><\/a>/g)].map((m) => m[1]!),
  ])

describe('docs', () => {
  it(`${API_REFERENCE} is up to date with the OpenAPI description (npm run gen:docs)`, () => {
    expect(readFileSync(join(root, API_REFERENCE), 'utf8')).toBe(renderApiReference())
  })

  it('link only to files and headings that exist', () => {
    const broken: string[] = []
    for (const doc of DOCS) {
      const text = readFileSync(join(root, doc), 'utf8')
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!
        if (/^[a-z]+:/.test(target)) continue // http(s), mailto
        const [file, anchor] = target.split('#') as [string, string | undefined]
        const path = file ? join(root, dirname(doc), file) : join(root, doc)
        if (!existsSync(path)) {
          broken.push(`${doc}: ${target}`)
          continue
        }
        if (anchor && path.endsWith('.md') && !anchors(readFileSync(path, 'utf8')).has(anchor)) broken.push(`${doc}: ${target} (no such heading)`)
      }
    }
    expect(broken).toEqual([])
  })
})
