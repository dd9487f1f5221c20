/** Directory objects for the sandbox's tests and benchmark: varied on purpose, deterministic. */
import { createHash } from 'node:crypto';
import type { MappingGroup, MappingProvider, MappingUser } from './builtin.ts';

/** A provider as mappings see it. */
export const SAMPLE_PROVIDER: MappingProvider = Object.freeze({
  id: '00000000-0000-4000-8000-0000000000aa',
  slug: 'sample',
  name: 'Sample target',
});

/** SHA-256 hex of an id: what the host gives mappings as `uid`. */
export function uidOf(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

/** One user; every field can be overridden. */
export function sampleUser(overrides: Partial<MappingUser> & { username: string }): MappingUser {
  const id = overrides.id ?? `00000000-0000-4000-8000-${uidOf(overrides.username).slice(0, 12)}`;
  return {
    id,
    uid: uidOf(id),
    displayName: null,
    email: null,
    givenName: null,
    familyName: null,
    active: true,
    kind: 'internal',
    attributes: {},
    ...overrides,
  };
}

/** `count` users covering missing names and emails, empty strings, unicode, service accounts and inactive users. */
export function variedUsers(count: number): MappingUser[] {
  const given = ['Ada', 'Grace', 'Łukasz', 'José', '美咲', 'Zoë', '', 'Søren', 'Ngozi'];
  const family = ['Lovelace', 'Hopper', 'Müller', 'García', '佐藤', "O'Brien", 'Okafor', '', 'Kierkegaard', 'Ünal'];
  const users: MappingUser[] = [];
  for (let i = 0; i < count; i++) {
    const id = `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
    const givenName = i % 7 === 0 ? null : (given[i % given.length] ?? null);
    const familyName = i % 11 === 0 ? null : (family[i % family.length] ?? null);
    const composed = [givenName, familyName].filter(Boolean).join(' ');
    users.push({
      id,
      uid: uidOf(id),
      username: i % 19 === 0 ? `svc-${i}` : `user.${i}@example.com`,
      displayName: i % 5 === 0 ? null : i % 23 === 0 ? '' : composed || null,
      email: i % 9 === 0 ? null : i % 29 === 0 ? '' : `user.${i}+tag@exämple.com`,
      givenName,
      familyName,
      active: i % 13 !== 0,
      kind: i % 19 === 0 ? 'service_account' : 'internal',
      attributes:
        i % 4 === 0
          ? {}
          : { department: `dept-${i % 6}`, costCenter: String(4000 + i), tags: ['a', i % 2 === 0 ? 'b' : 'c'] },
    });
  }
  return users;
}

/** `count` groups with plain, unicode and long names. */
export function variedGroups(count: number): MappingGroup[] {
  const groups: MappingGroup[] = [];
  for (let i = 0; i < count; i++) {
    const id = `00000000-0000-4000-9000-${i.toString(16).padStart(12, '0')}`;
    const name =
      i % 3 === 0 ? `Engineering ${i}` : i % 3 === 1 ? `Équipe «${i}» 日本` : `g-${i}-${'x'.repeat(i % 200)}`;
    groups.push({ id, uid: uidOf(id), name, attributes: i % 2 === 0 ? {} : { source: 'ldap' } });
  }
  return groups;
}
