import { createGroup, createUser, type Db } from '../../db/index.ts';

/** Seeds `users` directory users (`user<i>@example.test`) and `groups` groups (`group-<g>`; user i is in i mod groups). */
export async function seedDirectory(db: Db, users: number, groups: number) {
  const created = [];
  for (let i = 0; i < users; i += 1) {
    created.push(
      await createUser(db, {
        username: `user${i}@example.test`,
        displayName: `User ${i}`,
        email: `user${i}@example.test`,
        givenName: 'User',
        familyName: `Number ${i}`,
        active: true,
        kind: 'internal',
        attributes: {},
      }),
    );
  }
  const createdGroups = [];
  for (let g = 0; g < groups; g += 1) {
    const members = created.filter((_, i) => i % groups === g).map((u) => u.id);
    createdGroups.push(await createGroup(db, { name: `group-${g}`, attributes: {}, members }));
  }
  return { users: created, groups: createdGroups };
}
