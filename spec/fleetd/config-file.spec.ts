import { expect } from 'chai';
import { describe, it } from 'mocha';

import { parseConfigFile } from '../../fleetd/config-file.js';

/** The settings of a file as `name=value@line` strings. */
function settings(text: string): string[] {
  const r = parseConfigFile(text);
  expect(r.problems, JSON.stringify(r.problems)).to.deep.equal([]);
  return r.settings.map((s) => `${s.name}=${s.value}@${s.line}`);
}

function problems(text: string): string[] {
  return parseConfigFile(text).problems.map((p) => `${p.line}: ${p.message}`);
}

describe('fleetd/config-file: fleet.conf as goini read it', () => {
  const cases: [string, string, string[]][] = [
    ['a plain key=value', 'agent_ttl=10s', ['agent_ttl=10s@1']],
    ['blanks around = and the value', '  agent_ttl =   10s   ', ['agent_ttl=10s@1']],
    ['a double-quoted value', 'metadata="a=b, c=d"', ['metadata=a=b, c=d@1']],
    ['a single-quoted value', "metadata='a=b'", ['metadata=a=b@1']],
    ['quotes keep # and ;', 'metadata="a=#1;2"', ['metadata=a=#1;2@1']],
    ['no escapes inside quotes', String.raw`public_ip="a\tb"`, [String.raw`public_ip=a\tb@1`]],
    ['a comment after a quoted value', 'metadata="a=b" # note', ['metadata=a=b@1']],
    ['an unquoted value ends at #', 'etcd_servers=http://a:2379 # the one', ['etcd_servers=http://a:2379@1']],
    [
      'an unquoted value ends at ;',
      'etcd_servers=http://a:2379;http://b:2379',
      ['etcd_servers=http://a:2379@1'],
    ],
    ['an escaped # stays', String.raw`metadata=a=b\#c`, ['metadata=a=b#c@1']],
    [
      'keys are lower-cased',
      'AGENT_TTL=10s\nEtcd_Servers=http://a:1',
      ['agent_ttl=10s@1', 'etcd_servers=http://a:1@2'],
    ],
    ['# and ; comment lines and blank lines', '# c\n; c\n\n   # c\nverbosity=1', ['verbosity=1@5']],
    ['an empty value', 'public_ip=', ['public_ip=@1']],
    ['an empty quoted value', 'public_ip=""', ['public_ip=@1']],
    ['CRLF line endings', 'verbosity=1\r\nagent_ttl=5s\r\n', ['verbosity=1@1', 'agent_ttl=5s@2']],
    ['a byte-order mark', '\uFEFFverbosity=1', ['verbosity=1@1']],
    [
      'a line ending in \\ continues on the next one, its leading blanks dropped',
      'etcd_servers=http://a:2379,\\\n    http://b:2379\nverbosity=1',
      ['etcd_servers=http://a:2379,http://b:2379@1', 'verbosity=1@3'],
    ],
    ['a comment line ending in \\ does not continue', '# note \\\nverbosity=1', ['verbosity=1@2']],
    ['a value with = in it', 'metadata=a=b,c=d', ['metadata=a=b,c=d@1']],
    [
      'a repeated key keeps both (the resolver warns)',
      'verbosity=1\nverbosity=2',
      ['verbosity=1@1', 'verbosity=2@2'],
    ],
  ];
  for (const [title, text, expected] of cases) {
    it(`reads ${title}`, () => {
      expect(settings(text)).to.deep.equal(expected);
    });
  }

  const bad: [string, string, string][] = [
    ['a line without =', 'agent_ttl 10s', '1: "agent_ttl 10s" is not key=value'],
    ['a key with a blank', 'agent ttl=10s', '1: "agent ttl" is not an option name'],
    ['an empty key', '=10s', '1: "" is not an option name'],
    ['an unterminated double quote', 'metadata="a=b', '1: metadata: the value has no closing "'],
    ['an unterminated single quote', "metadata='a=b", "1: metadata: the value has no closing '"],
    [
      'text after the closing quote',
      'metadata="a=b" c',
      '1: metadata: unexpected text after the closing ": "c"',
    ],
    ['a broken section line', '[agent', '1: "[agent" is not a [section] line'],
    [
      'an option inside a section',
      'verbosity=1\n[agent]\nagent_ttl=5s',
      '3: agent_ttl is inside section [agent]; fleetd reads options only at the top of the file, before any section',
    ],
  ];
  for (const [title, text, expected] of bad) {
    it(`reports ${title} with its line`, () => {
      expect(problems(text)).to.deep.equal([expected]);
    });
  }

  it('reports every problem of a file at once and keeps the good lines', () => {
    const r = parseConfigFile('verbosity=1\nbroken\nagent_ttl=5s\n= x\n');
    expect(r.problems.map((p) => p.line)).to.deep.equal([2, 4]);
    expect(r.settings.map((s) => s.name)).to.deep.equal(['verbosity', 'agent_ttl']);
  });

  it('numbers lines of continued settings by their first line', () => {
    const r = parseConfigFile('a=1\\\n2\nbad line\n');
    expect(r.settings.map((s) => s.line)).to.deep.equal([1]);
    expect(r.problems.map((p) => p.line)).to.deep.equal([3]);
  });
});
