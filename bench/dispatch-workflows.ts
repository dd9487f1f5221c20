/** The workflows of the dispatch bench (`dispatch.ts`): chains and fans of an activity that does nothing. */
import { proxyActivities } from '@temporalio/workflow';

const { nothing } = proxyActivities<{ nothing(): Promise<void> }>({ startToCloseTimeout: '10 seconds' });

/** `steps` activities one after the other: each waits for the last one's result to reach the workflow. */
export async function chain(steps: number): Promise<void> {
  for (let step = 0; step < steps; step += 1) await nothing();
}

/** `rounds` times, `width` activities at once (a full sync's ranges, a fan of 8). */
export async function fan(rounds: number, width: number): Promise<void> {
  for (let round = 0; round < rounds; round += 1) await Promise.all(Array.from({ length: width }, () => nothing()));
}
