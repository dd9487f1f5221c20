/**
 * The CPU time one call into an isolate used. isolated-vm's `cpuTime` counts the time the isolate's thread waited for
 * a core, so on a busy machine it reads like the clock (measured at load 22: 242 ms for 5.5 ms of work); the
 * process's CPU time counts every thread's, the isolate's among them. Both are upper bounds: the smaller is used.
 */

/**
 * The call's CPU time in nanoseconds: the isolate's reading after the call (or, when a memory limit disposed it, the
 * last one sampled while it ran) minus `isolateBefore`, or the process's CPU time since `processBefore` if smaller.
 */
export function callCpuNs(
  isolateAfter: bigint | undefined,
  isolateBefore: bigint | undefined,
  processBefore: NodeJS.CpuUsage,
  lastSample: bigint | undefined,
  processUsage: (since: NodeJS.CpuUsage) => NodeJS.CpuUsage = (since) => process.cpuUsage(since),
): bigint {
  const usage = processUsage(processBefore);
  const processNs = BigInt(usage.user + usage.system) * 1000n;
  const after = isolateAfter ?? lastSample;
  if (isolateBefore === undefined || after === undefined) return processNs;
  const isolateNs = after - isolateBefore;
  return isolateNs < processNs ? isolateNs : processNs;
}
