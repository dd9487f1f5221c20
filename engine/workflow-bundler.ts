/**
 * The child process `workflowBundle()` forks: bundles the workflow code (webpack and swc) and sends the code to its
 * parent. Bundling in the worker itself left about 200 MB of its resident memory behind for the life of the process.
 */
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';

// Bundled with every workflow: they run in the sandbox, beside the workflow code.
const INTERCEPTORS_PATH = fileURLToPath(new URL('./workflow-log-interceptors.ts', import.meta.url));

const workflowsPath = process.argv[2];
if (!workflowsPath || !process.send) throw new Error('workflow-bundler: run it through workflowBundle()');
const quiet = () => undefined;
const { code } = await bundleWorkflowCode({
  workflowsPath,
  workflowInterceptorModules: [INTERCEPTORS_PATH],
  logger: {
    log: quiet,
    trace: quiet,
    debug: quiet,
    info: quiet,
    warn: (message, meta) => console.warn(message, meta ?? ''),
    error: (message, meta) => console.error(message, meta ?? ''),
  },
});
process.send(code, () => process.disconnect());
