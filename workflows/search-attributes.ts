import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** The provider's slug on every scimflow workflow, so the Temporal UI can filter syncs by provider. */
export const SCIM_PROVIDER = defineSearchAttributeKey('ScimProvider', SearchAttributeType.KEYWORD);
