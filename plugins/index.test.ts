import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ScimflowError } from '../errors/index.ts';
import { createPluginRegistry, resolvePluginOptions } from './index.ts';

function configError(run: () => unknown): ScimflowError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ScimflowError);
    assert.equal(error.code, 'ERR_CONFIG');
    return error;
  }
  assert.fail('expected ERR_CONFIG');
}

describe('plugin registry', () => {
  test('holds the standard scim2 plugin and the vendor plugins', () => {
    const registry = createPluginRegistry();
    assert.deepEqual([...registry.keys()], ['scim2', 'aws', 'slack', 'salesforce', 'webex']);
    assert.equal(registry.get('scim2')?.id, 'scim2');
  });

  test('gives each registry its own plugin instances', () => {
    assert.notEqual(createPluginRegistry().get('scim2'), createPluginRegistry().get('scim2'));
  });
});

describe('resolvePluginOptions', () => {
  const registry = createPluginRegistry();

  test('fills the scim2 defaults, also when no options are given', () => {
    const defaults = { discoveryPath: '/ServiceProviderConfig', groupUpdate: 'auto' };
    assert.deepEqual(resolvePluginOptions(registry, 'scim2', {}), defaults);
    assert.deepEqual(resolvePluginOptions(registry, 'scim2', undefined), defaults);
    assert.deepEqual(resolvePluginOptions(registry, 'scim2', { groupUpdate: 'put', maxMembersPerRequest: 50 }), {
      discoveryPath: '/ServiceProviderConfig',
      groupUpdate: 'put',
      maxMembersPerRequest: 50,
    });
  });

  test('refuses an unknown plugin with ERR_CONFIG', () => {
    const error = configError(() => resolvePluginOptions(registry, 'okta', {}));
    assert.match(error.message, /unknown plugin "okta"/);
    assert.deepEqual(error.details.known, ['scim2', 'aws', 'slack', 'salesforce', 'webex']);
  });

  test('refuses invalid options with ERR_CONFIG naming each offending path', () => {
    const error = configError(() =>
      resolvePluginOptions(registry, 'scim2', {
        groupUpdate: 'merge',
        maxMembersPerRequest: 5000,
        discoveryPath: 'x',
        extra: 1,
      }),
    );
    const paths = (error.details.issues as Array<{ path: string }>).map((issue) => issue.path).sort();
    assert.deepEqual(paths, ['discoveryPath', 'extra', 'groupUpdate', 'maxMembersPerRequest']);
  });
});
