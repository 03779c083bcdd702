/** The bus and cache interface: publish/subscribe, get/set with TTL, atomic counters. Three drivers implement it. */

export type BusKind = 'redis' | 'upstash' | 'memory'

export interface Subscription {
  /** Stops delivery and releases the subscriber connection. Idempotent. */
  close(): Promise<void>
}

export type MessageHandler = (channel: string, message: string) => void

export interface SetOptions {
  /** Expiry in seconds; omitted = no expiry. */
  ttlSeconds?: number
  /** Only set when the key does not exist (SET NX). */
  onlyIfAbsent?: boolean
}

export interface Bus {
  readonly kind: BusKind
  /** Publishes to a channel; resolves to the number of subscribers that received it (as Redis reports). */
  publish(channel: string, message: string): Promise<number>
  /** Publishes each `[channel, message]` in order, in one round trip where the driver can (a pipeline). */
  publishMany(messages: ReadonlyArray<readonly [channel: string, message: string]>): Promise<void>
  /** Subscribes to channels; resolves once the subscription is active, so no message published after is missed. */
  subscribe(channels: string[], onMessage: MessageHandler): Promise<Subscription>
  get(key: string): Promise<string | null>
  /** Returns false when `onlyIfAbsent` was given and the key existed. */
  set(key: string, value: string, options?: SetOptions): Promise<boolean>
  del(key: string): Promise<void>
  /**
   * Atomically adds `by` to an integer counter and returns the new value. The expiry is set when the
   * counter is created and never extended, so a counter is a fixed window.
   */
  incr(key: string, by?: number, ttlSeconds?: number): Promise<number>
  /** Seconds until the key expires; -1 without expiry, -2 when absent (Redis TTL semantics). */
  ttl(key: string): Promise<number>
  ping(): Promise<void>
  close(): Promise<void>
}

/** Prefixes keys and channels so several deployments (or test runs) can share one Redis. */
export const prefixer = (prefix: string) => (name: string) => (prefix ? `${prefix}${name}` : name)

/**
 * INCRBY, and PEXPIRE only when this call created the key: a fixed window that concurrent callers
 * share. Both Redis drivers run this text; the bus REST server's memory backend recognizes it.
 */
export const INCR_SCRIPT = `
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 and v == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v`
