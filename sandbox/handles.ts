import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Runs a full garbage collection now, so that the finalisers of isolated-vm's handles no longer referenced run while
 * the process is whole; `disposeAll` calls it once the isolates are disposed. Left to a collection during the process's exit, one
 * runs after isolated-vm has released the main thread's environment, and its finaliser (`ClassHandle::WeakCallback`,
 * which asks for that environment) aborts the process with `environment != nullptr` in
 * `IsolateEnvironment::GetCurrent`: seen in test files whose tests had all passed, each time after they had disposed
 * of their isolates. `gc` is exposed the way jest exposes it.
 */
export function collectIsolateHandles(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}
