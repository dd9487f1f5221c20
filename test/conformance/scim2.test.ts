/** The conformance kit for the standard plugin against SCIMMY, an independent SCIM 2.0 implementation. */
import { describeConformance } from './kit.ts';
import { startScimTarget } from '../servers/index.ts';

describeConformance({
  plugin: 'scim2',
  against: 'SCIMMY',
  start: () => startScimTarget(),
  deprovisioned: 'deleted',
});
