/**
 * The auth start-up task: the signing keys (active and published next) on first start, a check that the
 * active key opens with this process's KEK, the admin user when there are no users yet, and pruning of
 * long-expired sessions.
 */
import type { Services } from '../services.ts'
import type { StartupTask } from '../startup.ts'
import { ensureSigningKeys, checkActiveKeyOpens } from './keys.ts'
import { hashPassword } from './passwords.ts'

const LOCK_NAMESPACE = 7_337_003

const randomPassword = () => {
  const bytes = crypto.getRandomValues(new Uint8Array(18))
  let s = ''
  for (const b of bytes) s += String.fromCharCode(b)
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_') // 24 characters, 144 bits
}

const banner = (username: string, password: string) =>
  [
    '',
    '=================================================================',
    ` NEXUS created the admin user "${username}" with this password:`,
    '',
    `     ${password}`,
    '',
    ' It is shown this once. Set NEXUS_ADMIN_PASSWORD to choose it yourself.',
    '=================================================================',
    '',
  ].join('\n')

/**
 * Creates the admin (NEXUS_ADMIN_USERNAME, password NEXUS_ADMIN_PASSWORD or a generated one, announced
 * once) when the users table is empty. Several processes starting at once create it exactly once.
 */
export const ensureAdmin = async (services: Services, announce: (text: string) => void): Promise<boolean> => {
  const { sql, t } = services.db
  const { config } = services
  const [any] = await sql`select 1 from ${t.users} limit 1`
  if (any) return false
  const password = config.NEXUS_ADMIN_PASSWORD ?? randomPassword()
  const passwordHash = await hashPassword(password)
  const created = await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${LOCK_NAMESPACE}, hashtext(${services.db.schema}))`
    const [exists] = await tx`select 1 from ${t.users} limit 1`
    if (exists) return false
    await tx`insert into ${t.users} (username, password_hash, roles)
             values (${config.NEXUS_ADMIN_USERNAME}, ${passwordHash}, ${tx.array(['admin'])})`
    return true
  })
  if (!created) return false
  services.log.info('created the admin user', {
    username: config.NEXUS_ADMIN_USERNAME,
    source: config.NEXUS_ADMIN_PASSWORD ? 'NEXUS_ADMIN_PASSWORD' : 'generated, shown once on stdout',
  })
  // The one place a password is ever printed: outside the JSON log stream, only when generated.
  if (!config.NEXUS_ADMIN_PASSWORD) announce(banner(config.NEXUS_ADMIN_USERNAME, password))
  return true
}

/** Session rows are kept a week past their token's expiry (for audit), then deleted; run at each start. */
export const pruneSessions = async (services: Services): Promise<number> => {
  const { sql, t } = services.db
  const rows = await sql`delete from ${t.human_sessions} where expires_at < now() - interval '7 days'`
  return rows.count
}

/** Registered in lib/startup.ts; both hosts run it before serving. */
export const authStartupTask: StartupTask = {
  name: 'auth',
  async run(services, context) {
    // A deployment that verifies through another auth service's JWKS neither signs nor owns users.
    if (services.config.NEXUS_AUTH_JWKS_URL) return
    // Independent (other tables, other locks): the admin's bcrypt hash runs on the main thread while the
    // RSA keys are generated off it, which keeps a first start short.
    const [{ kid, created }] = await Promise.all([ensureSigningKeys(services), ensureAdmin(services, context.announce)])
    if (created.length) services.log.info('generated signing keys', { created, active: kid })
    await checkActiveKeyOpens(services)
    await pruneSessions(services)
  },
}
