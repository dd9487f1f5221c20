/** The oldest server scimflow runs on (a `server_version_num`). */
export declare const MIN_PG_VERSION_NUM: number;
/** Why a server reporting this `server_version_num` cannot hold scimflow's database, or null when it can. */
export declare function postgresVersionProblem(versionNum: number): string | null;
