// meridian.yaml: valid files load; every kind of mistake is reported with file, line and field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ConfigError, parseConfig, type ConfigIssue } from '../../src/config/load.ts';

const demo = readFileSync(new URL('../../examples/demo.yaml', import.meta.url), 'utf8');

function issues(text: string): ConfigIssue[] {
  try {
    parseConfig(text, 'clinic.yaml');
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.issues;
  }
  assert.fail('expected the configuration to be rejected');
}

/** The 1-based line of the first occurrence of `needle` in `text`. */
function lineOf(text: string, needle: string): number {
  const i = text.indexOf(needle);
  assert.ok(i >= 0, needle);
  return text.slice(0, i).split('\n').length;
}

test('the demo configuration is valid', () => {
  const c = parseConfig(demo, 'demo.yaml');
  assert.equal(c.config.practitioners.length, 3);
  assert.equal(c.config.locations.length, 2);
  assert.match(c.hash, /^[0-9a-f]{64}$/);
});

test('a bad e-mail is reported at its line with its field path', () => {
  const text = demo.replace('email: s.brennan@lotusclinic.example', 'email: not-an-email');
  const [i] = issues(text);
  assert.equal(i.file, 'clinic.yaml');
  assert.equal(i.field, 'practitioners[1].email');
  assert.equal(i.line, lineOf(text, 'not-an-email'));
});

test('an unknown time zone, an unknown platform and a dangling reference are each located', () => {
  const text = demo
    .replace('timeZone: America/Chicago\n  targets', 'timeZone: America/Chikago\n  targets')
    .replace('platform: ics-publish', 'platform: icalz');
  const found = issues(text);
  assert.equal(found[0].field, 'clinic.timeZone');
  assert.equal(found[0].line, lineOf(text, 'America/Chikago'));
  const refs = issues(demo.replace('platform: ics-publish', 'platform: icalz'));
  const p = refs.find((x) => x.field === 'connections[1].platform');
  assert.ok(p, JSON.stringify(refs));
  assert.equal(p.line, lineOf(demo, 'platform: ics-publish'));
  assert.match(p.message, /unknown platform "icalz"/);
  const dangling = issues(demo.replace('locations: [lakeview]', 'locations: [downtown]'));
  assert.equal(dangling[0].field, 'practitioners[0].locations[0]');
  assert.match(dangling[0].message, /no location "downtown"/);
});

test('a secret written as a value is refused; an environment reference is accepted', () => {
  const withValue = demo.replace('    secrets: { signingKey: { stored: true } }\n', '    secrets:\n      signingKey: abc123\n');
  const [i] = issues(withValue);
  assert.equal(i.field, 'connections[0].secrets.signingKey');
  assert.equal(i.line, lineOf(withValue, 'signingKey: abc123'));
  assert.match(i.message, /env/);
  const withRef = demo.replace('    secrets: { signingKey: { stored: true } }\n', '    secrets:\n      signingKey: { env: CALENDLY_SIGNING_KEY }\n');
  assert.equal(parseConfig(withRef, 'x.yaml').config.connections[0].secrets.signingKey && true, true);
  const unknownSecret = demo.replace('    secrets: { signingKey: { stored: true } }\n', '    secrets:\n      password: { env: X }\n');
  assert.match(issues(unknownSecret)[0].message, /no secret "password"/);
});

test('a template that leaks more than the privacy level allows is refused', () => {
  const text = demo.replace('    privacy: minimal\n', "    privacy: minimal\n    config:\n      template: { title: '{{patient.name}}', description: '{{service}}' }\n");
  const [i] = issues(text);
  assert.equal(i.field, 'connections[1].config.template');
  assert.match(i.message, /patient\.name/);
});

test('YAML syntax errors and unknown keys name the line', () => {
  const broken = issues('clinic:\n  id: x\n  name: [unclosed\n');
  assert.equal(broken[0].file, 'clinic.yaml');
  assert.ok(broken[0].line >= 3);
  const typo = demo.replace('    email: dr.okafor@lotusclinic.example', '    emial: dr.okafor@lotusclinic.example');
  const [t] = issues(typo);
  assert.equal(t.field, 'practitioners[0]');
  assert.match(t.message, /emial/);
  assert.equal(t.line, lineOf(typo, 'id: okafor'));
});

test('duplicate ids are refused', () => {
  const text = demo.replace('id: nakamura', 'id: okafor');
  const i = issues(text).find((x) => x.field === 'practitioners[2].id');
  assert.ok(i);
  assert.equal(i.line, lineOf(text, 'id: okafor\n    name: Dr. Kenji'));
});
