/** Auth's caches live in the shared per-process or per-isolate state (lib/state.ts). */
export { isLongLived, scopedState } from '../state.ts'
