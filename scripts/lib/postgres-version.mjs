// The PostgreSQL versions scimflow runs on. Plain JavaScript with no dependencies: the launcher imports it before
// `npm ci` has run.

/** The oldest server scimflow runs on: migration 0003 uses CREATE OR REPLACE TRIGGER, new in PostgreSQL 14. */
export const MIN_PG_VERSION_NUM = 140000;

/** The major version of a `server_version_num` (140011 -> 14). */
function major(versionNum) {
  return Math.floor(versionNum / 10000);
}

/** Why a server reporting this `server_version_num` cannot hold scimflow's database, or null when it can. */
export function postgresVersionProblem(versionNum) {
  if (Number.isInteger(versionNum) && versionNum >= MIN_PG_VERSION_NUM) return null;
  const found =
    Number.isInteger(versionNum) && versionNum > 0 ? `version ${major(versionNum)}` : 'of an unknown version';
  return `it is ${found}; scimflow needs PostgreSQL ${major(MIN_PG_VERSION_NUM)} or later`;
}
