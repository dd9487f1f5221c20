import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { storableJson } from './text.ts';

describe('storableJson', () => {
  test('leaves JSON without U+0000 or an unpaired surrogate as it is', () => {
    const json = JSON.stringify({ name: 'Zoë 美咲 \ud83d\ude00', tab: '\t', bell: '\u0007', path: 'C:\\u0000' });
    assert.equal(storableJson(json), json);
  });

  test('turns U+0000 and unpaired surrogates into U+FFFD, in values and in keys', () => {
    const json = JSON.stringify({ 'k\u0000': ['a\u0000b', 'high \ud800', 'low \udfff', 'pair \ud83d\ude00'] });
    assert.deepEqual(JSON.parse(storableJson(json)), {
      'k\ufffd': ['a\ufffdb', 'high \ufffd', 'low \ufffd', 'pair \ud83d\ude00'],
    });
  });

  test('keeps a backslash followed by the letters u0000 (text, not an escape)', () => {
    const json = JSON.stringify(['\\u0000', '\\\u0000', '\\\\ud800']);
    assert.deepEqual(JSON.parse(storableJson(json)), ['\\u0000', '\\\ufffd', '\\\\ud800']);
  });
});
