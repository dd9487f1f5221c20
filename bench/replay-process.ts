/**
 * The scale bench's plain HTTP client as a process of its own: reads what the loopback target recorded and replays it
 * (`replay`), so the recorded requests never sit in the worker process whose memory the bench measures. argv: the
 * target's origin and the requests in flight; sends the elapsed milliseconds over IPC.
 */
import { recordedRequests, replay } from './full-sync.ts';

const [origin, inFlight] = process.argv.slice(2) as [string, string];
const elapsed = await replay(origin, await recordedRequests(origin), Number(inFlight));
process.send?.(elapsed, () => process.exit(0));
