import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { andFilter, eqFilter, quoteFilterValue } from './filter.ts';

describe('eqFilter', () => {
  test('quotes a plain string value', () => {
    assert.equal(eqFilter('userName', 'alice@example.com'), 'userName eq "alice@example.com"');
  });

  test('escapes double quotes and backslashes with JSON string rules', () => {
    assert.equal(eqFilter('userName', 'a"b'), 'userName eq "a\\"b"');
    assert.equal(eqFilter('userName', 'a\\b'), 'userName eq "a\\\\b"');
    assert.equal(eqFilter('displayName', 'x\\"y'), 'displayName eq "x\\\\\\"y"');
  });

  test('escapes control characters and keeps non-ASCII text as is', () => {
    assert.equal(eqFilter('displayName', 'tab\there\nnew'), 'displayName eq "tab\\there\\nnew"');
    assert.equal(eqFilter('displayName', 'Zoë 東京'), 'displayName eq "Zoë 東京"');
  });

  test('every escaped value reads back to the original as a JSON string', () => {
    const awkward = ['"', '\\', '\\"', '""', 'a" or userName pr or "', '\u0000\u001f', '} ] ) ('];
    for (const value of awkward) {
      const filter = eqFilter('externalId', value);
      const literal = filter.slice('externalId eq '.length);
      assert.equal(JSON.parse(literal), value, `round trip of ${JSON.stringify(value)}`);
    }
  });

  test('renders booleans, numbers and null without quotes', () => {
    assert.equal(eqFilter('active', true), 'active eq true');
    assert.equal(eqFilter('meta.version', 3), 'meta.version eq 3');
    assert.equal(eqFilter('externalId', null), 'externalId eq null');
  });

  test('accepts sub-attributes, $ref and schema URN prefixes', () => {
    assert.equal(eqFilter('emails.value', 'a@b.c'), 'emails.value eq "a@b.c"');
    assert.equal(eqFilter('members.$ref', 'x'), 'members.$ref eq "x"');
    assert.equal(
      eqFilter('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber', '42'),
      'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "42"',
    );
  });

  test('rejects attribute names that could inject filter syntax', () => {
    for (const attribute of [
      '',
      'user name',
      'userName eq "x" or userName',
      '1abc',
      'a.b.c',
      'emails[type eq "work"]',
      'a"b',
    ]) {
      assert.throws(() => eqFilter(attribute, 'x'), TypeError, `attribute ${JSON.stringify(attribute)}`);
    }
  });

  test('rejects values that have no filter literal', () => {
    assert.throws(() => quoteFilterValue(Number.NaN), TypeError);
    assert.throws(() => quoteFilterValue(Number.POSITIVE_INFINITY), TypeError);
    assert.throws(() => quoteFilterValue({} as unknown as string), TypeError);
  });
});

describe('andFilter', () => {
  test('joins comparisons with and', () => {
    assert.equal(
      andFilter(eqFilter('id', 'g1'), eqFilter('members.value', 'u1')),
      'id eq "g1" and members.value eq "u1"',
    );
  });

  test('returns a single filter unchanged', () => {
    assert.equal(andFilter('userName eq "a"'), 'userName eq "a"');
  });

  test('rejects an empty operand list and blank operands', () => {
    assert.throws(() => andFilter(), TypeError);
    assert.throws(() => andFilter('userName eq "a"', '  '), TypeError);
  });
});
