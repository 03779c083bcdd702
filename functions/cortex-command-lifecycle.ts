/** An agent's side of a command: claim (long-poll, leased), complete, fail. Only for the agents a user registered. */
import { Hono } from 'hono'
import * as z from 'zod'
import { defineFunction, jsonBody, parseWith, requestSignal, type AppEnv } from '../lib/app.ts'
import { authUser, requireAuth } from '../lib/auth/middleware.ts'
import { AgentId, assertMayActForAgent } from '../lib/cortex/agents.ts'
import {
  claim,
  CommandId,
  CompleteBody,
  DEFAULT_LEASE_SECONDS,
  ensureSweeper,
  FailBody,
  finish,
  MAX_WAIT_SECONDS,
} from '../lib/cortex/commands.ts'

export const ClaimParams = z.object({ agent_id: AgentId })
export const ClaimQuery = z.object({
  wait: z.coerce.number().min(0).max(MAX_WAIT_SECONDS).default(0),
  lease: z.coerce.number().int().min(1).max(3600).default(DEFAULT_LEASE_SECONDS),
})
export const Params = z.object({ id: CommandId })

/** Aborts when any of the signals does; `dispose` removes the listeners (the shutdown signal lives long). */
const anySignal = (signals: Array<AbortSignal | undefined>) => {
  const ctrl = new AbortController()
  const abort = () => ctrl.abort()
  const live = signals.filter((s): s is AbortSignal => s !== undefined)
  for (const s of live) {
    if (s.aborted) ctrl.abort()
    else s.addEventListener('abort', abort, { once: true })
  }
  return { signal: ctrl.signal, dispose: () => live.forEach((s) => s.removeEventListener('abort', abort)) }
}

const app = new Hono<AppEnv>()
  .post('/api/v1/agents/:agent_id/commands/claim', requireAuth(), async (c) => {
    const { services } = c.var
    ensureSweeper(services)
    const { agent_id } = parseWith(ClaimParams, c.req.param())
    const q = parseWith(ClaimQuery, c.req.query())
    await assertMayActForAgent(services, authUser(c), agent_id)
    const { signal, dispose } = anySignal([requestSignal(c), services.lifecycle?.shutdown])
    const command = await claim(services, authUser(c), agent_id, { waitSeconds: q.wait, leaseSeconds: q.lease, signal }).finally(
      dispose,
    )
    if (!command) return c.body(null, 204)
    return c.json(command)
  })
  .post('/api/v1/commands/:id/complete', requireAuth(), async (c) => {
    const { id } = parseWith(Params, c.req.param())
    const body = await jsonBody(c, CompleteBody)
    return c.json(await finish(c.var.services, authUser(c), id, { kind: 'complete', body }))
  })
  .post('/api/v1/commands/:id/fail', requireAuth(), async (c) => {
    const { id } = parseWith(Params, c.req.param())
    const body = await jsonBody(c, FailBody)
    return c.json(await finish(c.var.services, authUser(c), id, { kind: 'fail', body }))
  })

export default defineFunction('cortex-command-lifecycle', app)
