// src/upstream.ts imports two undici files by path (src/undici-parts.d.ts types them). If an undici
// release moves or replaces them, this fails before the proxy does.
import { Pool, buildConnector } from 'undici';
import PoolClass from 'undici/lib/dispatcher/pool.js';
import buildConnectorFn from 'undici/lib/core/connect.js';

describe('the undici files upstream.ts imports directly', () => {
  it('lib/dispatcher/pool.js is the Pool undici exports', () => {
    expect(PoolClass).toBe(Pool);
  });

  it('lib/core/connect.js is the buildConnector undici exports', () => {
    expect(buildConnectorFn).toBe(buildConnector);
  });
});
