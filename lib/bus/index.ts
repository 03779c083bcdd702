/** Picks the bus driver from the config: Redis TCP, else Upstash HTTP, else in-process. */
import type { Config } from '../env.ts'
import { createMemoryBus } from './memory.ts'
import { createRedisBus } from './redis.ts'
import type { Bus } from './types.ts'
import { createUpstashBus } from './upstash.ts'

export type { Bus, BusKind, MessageHandler, SetOptions, Subscription } from './types.ts'
export { createMemoryBus, createRedisBus, createUpstashBus }

/** Creates the bus the config asks for. The memory bus is per call: a host makes one and shares it. */
export const createBus = (config: Config): Bus => {
  if (config.REDIS_URL) return createRedisBus({ url: config.REDIS_URL, prefix: config.NEXUS_BUS_PREFIX })
  if (config.UPSTASH_REDIS_REST_URL && config.UPSTASH_REDIS_REST_TOKEN)
    return createUpstashBus({
      url: config.UPSTASH_REDIS_REST_URL,
      token: config.UPSTASH_REDIS_REST_TOKEN,
      prefix: config.NEXUS_BUS_PREFIX,
    })
  return createMemoryBus()
}
