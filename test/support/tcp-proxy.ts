/** A TCP proxy in front of a real server, so a test can take "the server" down and bring it back without touching it. */
import { createServer, connect, type Server, type Socket } from 'node:net'

export interface TcpProxy {
  port: number
  /** Rewrites a URL's host and port to go through the proxy. */
  via(url: string): string
  /** Refuses new connections and cuts the open ones, as a stopped server would. */
  down(): Promise<void>
  /** Accepts connections again on the same port. */
  up(): Promise<void>
  close(): Promise<void>
}

export const startTcpProxy = async (target: string): Promise<TcpProxy> => {
  const t = new URL(target)
  const targetPort = Number(t.port)
  const sockets = new Set<Socket>()
  let server: Server | undefined
  let port = 0

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((client) => {
        const upstream = connect(targetPort, t.hostname)
        sockets.add(client).add(upstream)
        const drop = () => {
          client.destroy()
          upstream.destroy()
          sockets.delete(client)
          sockets.delete(upstream)
        }
        client.on('error', drop).on('close', drop)
        upstream.on('error', drop).on('close', drop)
        client.pipe(upstream).pipe(client)
      })
      s.once('error', reject)
      s.listen(port, '127.0.0.1', () => {
        port = (s.address() as { port: number }).port
        server = s
        resolve()
      })
    })

  const down = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy()
      sockets.clear()
      if (!server) return resolve()
      server.close(() => resolve())
      server = undefined
    })

  await listen()
  return {
    port,
    via(url) {
      const u = new URL(url)
      u.hostname = '127.0.0.1'
      u.port = String(port)
      return u.toString()
    },
    down,
    up: listen,
    close: down,
  }
}
