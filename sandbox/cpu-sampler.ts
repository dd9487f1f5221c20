/**
 * Reads the CPU time of isolates while calls into them run, on one shared timer: a memory limit disposes an isolate,
 * after which its CPU time cannot be read, so the engine charges a stopped call its last reading. One timer serves
 * every running call and stops itself on the first tick that finds none, so a call starts no timer of its own.
 */

/** What a running call's sampling gives back: the last reading taken while it ran (undefined before the first). */
export interface CpuSample {
  readonly last: bigint | undefined;
  /** Ends the sampling of this call; further ticks leave `last` alone. */
  stop(): void;
}

/** Samples the CPU time of running calls every `intervalMs` on one timer; `read` returns undefined when it cannot. */
export interface CpuSampler {
  /** Starts sampling one call; `read` is called on each tick until the sample is stopped. */
  start(read: () => bigint | undefined): CpuSample;
}

/** The timer functions the sampler uses (Node's by default; tests pass their own to tick by hand). */
export interface SamplerTimers {
  setInterval(tick: () => void, ms: number): { unref(): unknown };
  clearInterval(timer: { unref(): unknown }): void;
}

interface Sample extends CpuSample {
  last: bigint | undefined;
  readonly read: () => bigint | undefined;
}

const NODE_TIMERS: SamplerTimers = {
  setInterval: (tick, ms) => setInterval(tick, ms),
  clearInterval: (timer) => clearInterval(timer as NodeJS.Timeout),
};

/** Builds a sampler with one unref'd timer, running only while some call is sampled (and one tick after). */
export function createCpuSampler(intervalMs: number, timers: SamplerTimers = NODE_TIMERS): CpuSampler {
  const running = new Set<Sample>();
  let timer: { unref(): unknown } | null = null;

  const tick = (): void => {
    if (running.size === 0) {
      if (timer) timers.clearInterval(timer);
      timer = null;
      return;
    }
    for (const sample of running) sample.last = sample.read() ?? sample.last;
  };

  return {
    start(read) {
      const sample: Sample = {
        last: undefined,
        read,
        stop: () => {
          running.delete(sample);
        },
      };
      running.add(sample);
      if (timer === null) {
        timer = timers.setInterval(tick, intervalMs);
        timer.unref();
      }
      return sample;
    },
  };
}
