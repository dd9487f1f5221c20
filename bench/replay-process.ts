/**
 * The scale bench's plain HTTP client as a process of its own: reads what the loopback target recorded and replays it
 * (`replay`), so the recorded requests never sit in the worker process whose memory the bench measures. argv: the
 * target's origin and the requests in flight; sends the elapsed milliseconds, and the CPU milliseconds the replay took
 * in this process, over IPC.
 */
import { recordedRequests, replay } from './full-sync.ts';

const [origin, inFlight] = process.argv.slice(2) as [string, string];
const requests = await recordedRequests(origin);
const cpu = process.cpuUsage();
const elapsedMs = await replay(origin, requests, Number(inFlight));
const { user, system } = process.cpuUsage(cpu);
process.send?.({ elapsedMs, cpuMs: (user + system) / 1000 }, () => process.exit(0));
