/** Independent SCIM servers that tests run the engine against. */
export { startScimTarget, type ScimTarget } from './scim-target.ts';
export type { FaultRule, ReceivedRequest, ScimTargetOptions } from './scim-target-types.ts';
export {
  startFaultProxy,
  type FaultKind,
  type FaultProxy,
  type FaultProxyOptions,
  type FaultRates,
  type ProxiedRequest,
  type RequestTiming,
} from './fault-proxy.ts';
export { startBetterAuthTarget } from './better-auth-target.ts';
