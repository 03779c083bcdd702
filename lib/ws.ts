/**
 * WebSocket upgrades behind one runtime-neutral interface. A function calls `upgradeWebSocket`; the
 * host's implementation does the rest (Node: the `ws` library on the HTTP server's upgrade event;
 * workerd: a WebSocketPair).
 */
import { ApiError } from './errors.ts'

export interface WsConnection {
  send(data: string): void
  close(code?: number, reason?: string): void
  /** Bytes queued but not yet sent; a sender backs off (or drops a slow client) when this grows. */
  readonly bufferedAmount: number
  readonly isOpen: boolean
}

export interface WsHandlers {
  onOpen?(ws: WsConnection): void
  onMessage?(data: string, ws: WsConnection): void
  onClose?(code: number, reason: string): void
}

/** What a runtime provides; `upgrade` returns the response that completes the handshake. */
export interface WebSocketUpgrader {
  upgrade(request: Request, handlers: WsHandlers): Response | Promise<Response>
}

/** True when the request asks for a WebSocket. */
export const wantsWebSocket = (request: Request) => request.headers.get('upgrade')?.toLowerCase() === 'websocket'

/** workerd's (and Cloudflare's) upgrader: a WebSocketPair, the server end accepted in this request. */
export const webSocketPairUpgrader = (): WebSocketUpgrader | undefined => {
  const Pair = (globalThis as { WebSocketPair?: new () => { 0: WebSocket; 1: WebSocket } }).WebSocketPair
  if (!Pair) return undefined
  return {
    upgrade(_request, handlers) {
      const pair = new Pair()
      const client = pair[0]
      const server = pair[1] as WebSocket & { accept(): void }
      server.accept()
      let open = true
      const conn: WsConnection = {
        send: (data) => {
          if (open) server.send(data)
        },
        close: (code, reason) => {
          if (!open) return
          open = false
          server.close(code ?? 1000, reason)
        },
        get bufferedAmount() {
          return server.bufferedAmount ?? 0
        },
        get isOpen() {
          return open
        },
      }
      server.addEventListener('message', (ev: MessageEvent) => {
        handlers.onMessage?.(typeof ev.data === 'string' ? ev.data : new TextDecoder().decode(ev.data as ArrayBuffer), conn)
      })
      server.addEventListener('close', (ev: CloseEvent) => {
        // Answer the client's close frame, or it waits out its close timeout (workerd does not by default).
        if (open) {
          try {
            server.close(ev.code === 1005 ? 1000 : ev.code, ev.reason)
          } catch {
            // already closing
          }
        }
        open = false
        handlers.onClose?.(ev.code, ev.reason)
      })
      server.addEventListener('error', () => {
        open = false
        handlers.onClose?.(1006, 'error')
      })
      queueMicrotask(() => handlers.onOpen?.(conn))
      return new Response(null, { status: 101, webSocket: client } as ResponseInit)
    },
  }
}

/**
 * Completes a WebSocket handshake with the runtime's upgrader. A request that did not ask for a
 * WebSocket gets 426; a runtime without an upgrader gets 501 in the envelope.
 */
export const upgradeWebSocket = (
  request: Request,
  upgrader: WebSocketUpgrader | undefined,
  handlers: WsHandlers,
): Response | Promise<Response> => {
  if (!wantsWebSocket(request))
    throw new ApiError(426, 'UPGRADE_REQUIRED', 'This endpoint speaks WebSocket: send an Upgrade: websocket request', {
      headers: { upgrade: 'websocket' },
      type: 'invalid_request_error',
    })
  if (!upgrader) throw new ApiError(501, 'NOT_SUPPORTED', 'WebSockets are not available on this runtime')
  return upgrader.upgrade(request, handlers)
}
