// Types for the two undici files src/upstream.ts imports directly (undici types only its index).
declare module 'undici/lib/dispatcher/pool.js' {
  import type { Pool } from 'undici';
  const PoolClass: typeof Pool;
  export default PoolClass;
}
declare module 'undici/lib/core/connect.js' {
  import type { buildConnector } from 'undici';
  const buildConnectorFn: typeof buildConnector;
  export default buildConnectorFn;
}
