/** The gateway's per-process (Node) or per-isolate (workerd) state (lib/state.ts). */
import type { Services } from '../services.ts'
import { scopedState } from '../state.ts'

/** The gateway state named `name` for this process or isolate and deployment, made on first use. */
export const gatewayState = <T>(services: Services, name: string, make: () => T): T =>
  scopedState(services, `gateway:${name}`, make)
