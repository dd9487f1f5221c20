/**
 * The tests' fault-injecting proxy (`test/servers/fault-proxy.ts`) as a process of its own, so its timers and write
 * windows do not share an event loop with the worker being measured. Options come as JSON in argv[2]; prints
 * `LISTENING <port>` when ready and answers `counts` and `timings` over IPC.
 */
import { startFaultProxy, type FaultProxyOptions } from '../test/servers/index.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as FaultProxyOptions;
const proxy = await startFaultProxy(options);
process.on('message', (message: { id: number; call: 'counts' | 'timings' }) => {
  const result = message.call === 'counts' ? proxy.counts() : proxy.timings();
  process.send?.({ id: message.id, result });
});
process.on('disconnect', () => void proxy.close().then(() => process.exit(0)));
console.log(`LISTENING ${new URL(proxy.url).port}`);
