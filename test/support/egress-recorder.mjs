/**
 * Preloaded into a host process by the sovereignty test (NODE_OPTIONS=--import): every outgoing TCP
 * connection and DNS lookup to anything but loopback or a private address is written to stderr as
 * `EGRESS <target>`. Records only; never blocks, so the process behaves as it would in production.
 */
import dns from 'node:dns'
import net from 'node:net'

const local = (host) => {
  if (!host) return true
  const h = String(host).replace(/^\[|\]$/g, '').toLowerCase()
  if (h === 'localhost' || h === '::1' || h.startsWith('127.') || h.startsWith('10.') || h.startsWith('192.168.')) return true
  if (/^172\.(1[6-9]|2\d|3[01])\./.test(h)) return true
  if (h.startsWith('::ffff:127.')) return true
  return false
}
const report = (what) => process.stderr.write(`EGRESS ${what}\n`)

const connect = net.Socket.prototype.connect
net.Socket.prototype.connect = function (...args) {
  const first = args[0]
  const options = Array.isArray(first) ? first[0] : first
  if (options && typeof options === 'object' && !options.path) {
    if (!local(options.host)) report(`tcp ${options.host}:${options.port}`)
  } else if (typeof first === 'number') {
    const host = typeof args[1] === 'string' ? args[1] : 'localhost'
    if (!local(host)) report(`tcp ${host}:${first}`)
  }
  return connect.apply(this, args)
}

const lookup = dns.lookup
dns.lookup = function (hostname, ...rest) {
  if (!local(hostname)) report(`dns ${hostname}`)
  return lookup.call(this, hostname, ...rest)
}
