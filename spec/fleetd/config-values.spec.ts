import { expect } from 'chai';
import { describe, it } from 'mocha';

import {
  formatFileMode,
  formatGoDuration,
  formatHostPort,
  isLoopbackHost,
  parseBoolean,
  parseBusAddress,
  parseEtcdServers,
  parseFileMode,
  parseGoDuration,
  parseHostPort,
  parseInteger,
  parseIpAddress,
  parseKeyPrefix,
  parseList,
  parseMetadata,
  parsePath,
  parseSeconds,
  type Parsed,
} from '../../fleetd/config-values.js';

function value<T>(p: Parsed<T>): T {
  if (!p.ok) throw new Error(`expected a value, got: ${p.why}`);
  return p.value;
}

function why<T>(p: Parsed<T>): string {
  if (p.ok) throw new Error(`expected a problem, got ${JSON.stringify(p.value)}`);
  return p.why;
}

describe('fleetd/config-values: option value parsers', () => {
  describe('Go durations', () => {
    const good: [string, number][] = [
      ['10s', 10_000],
      ['1m30s', 90_000],
      ['1.5h', 5_400_000],
      ['300ms', 300],
      ['2s500ms', 2500],
      ['0', 0],
      ['+3s', 3000],
      ['.5s', 500],
      ['1000us', 1],
      ['1000µs', 1],
      ['1000000ns', 1],
      ['1h2m3s', 3_723_000],
    ];
    for (const [text, ms] of good) {
      it(`reads ${text} as ${ms} ms`, () => {
        expect(value(parseGoDuration(text))).to.equal(ms);
      });
    }
    const bad: [string, string][] = [
      ['10', 'has no unit'],
      ['1.5', 'has no unit'],
      ['', 'empty'],
      ['10 s', 'is not a duration'],
      ['10sec', 'unknown unit "sec"'],
      ['10d', 'unknown unit "d"'],
      ['s', 'is not a duration'],
      ['1m30', 'is not a duration'],
    ];
    for (const [text, expected] of bad) {
      it(`refuses ${JSON.stringify(text)}`, () => {
        expect(why(parseGoDuration(text))).to.contain(expected);
      });
    }
    it('renders durations back in Go style', () => {
      expect([0, 500, 2000, 2500, 90_000, 3_723_000].map(formatGoDuration)).to.deep.equal([
        '0s',
        '500ms',
        '2s',
        '2.5s',
        '1m30s',
        '1h2m3s',
      ]);
    });
  });

  describe('seconds', () => {
    it('reads whole and decimal seconds', () => {
      expect(['1', '1.0', '0.5', '.25', '2.'].map((t) => value(parseSeconds(t, 0, 10)))).to.deep.equal([
        1000, 1000, 500, 250, 2000,
      ]);
    });
    it('refuses a unit, with a hint', () => {
      expect(why(parseSeconds('2s', 0, 10))).to.contain('without a unit');
    });
    it('refuses what is not a number', () => {
      expect(why(parseSeconds('two', 0, 10))).to.contain('is not a number of seconds');
      expect(why(parseSeconds('-1', 0, 10))).to.contain('is not a number of seconds');
      expect(why(parseSeconds('1e3', 0, 10))).to.contain('is not a number of seconds');
    });
    it('refuses values out of range', () => {
      expect(why(parseSeconds('11', 0.5, 10))).to.contain('between 0.5 and 10 seconds');
      expect(why(parseSeconds('0.1', 0.5, 10))).to.contain('between 0.5 and 10 seconds');
    });
  });

  describe('integers and booleans', () => {
    it('reads whole numbers within bounds', () => {
      expect(value(parseInteger(' 42 ', 1, 100))).to.equal(42);
      expect(why(parseInteger('0', 1, 100))).to.contain('between 1 and 100');
      expect(why(parseInteger('1.5', 1, 100))).to.contain('not a whole number');
      expect(why(parseInteger('-1', 0, 100))).to.contain('not a whole number');
      expect(why(parseInteger('', 0, 100))).to.contain('not a whole number');
    });
    it("reads Go's boolean words and yes/no/on/off", () => {
      for (const t of ['1', 't', 'T', 'TRUE', 'true', 'True', 'yes', 'on', 'y'])
        expect(value(parseBoolean(t)), t).to.equal(true);
      for (const t of ['0', 'f', 'F', 'FALSE', 'false', 'False', 'no', 'off', 'n'])
        expect(value(parseBoolean(t)), t).to.equal(false);
      expect(why(parseBoolean('maybe'))).to.contain('is not a boolean');
      expect(why(parseBoolean(''))).to.contain('is not a boolean');
    });
  });

  describe('lists and etcd servers', () => {
    it("strips fleet's JSON-ish list decoration and drops empty items", () => {
      expect(parseList('["http://a:1", "http://b:2"]')).to.deep.equal(['http://a:1', 'http://b:2']);
      expect(parseList('a, b,,c,')).to.deep.equal(['a', 'b', 'c']);
      expect(parseList('')).to.deep.equal([]);
    });
    it('reads http and https URLs with host and port, without a trailing slash', () => {
      expect(value(parseEtcdServers('http://10.0.0.1:2379/,http://[::1]:2379'))).to.deep.equal([
        'http://10.0.0.1:2379',
        'http://[::1]:2379',
      ]);
      expect(value(parseEtcdServers('https://etcd.example:2379'))).to.deep.equal([
        'https://etcd.example:2379',
      ]);
    });
    const bad: [string, string][] = [
      ['', 'needs at least one URL'],
      ['10.0.0.1:2379', 'has no scheme; write http://10.0.0.1:2379'],
      ['http//etcd', 'has no scheme'],
      ['http://a b:1', 'is not a URL'],
      ['unix:///run/etcd.sock', 'the scheme must be http or https'],
      ['http://10.0.0.1', 'has no port'],
      ['http://10.0.0.1:2379/v2', 'no path'],
      ['http://u:p@10.0.0.1:2379', 'credentials in the URL'],
      ['http://a:1,https://b:2', 'mixes http and https'],
    ];
    for (const [text, expected] of bad) {
      it(`refuses ${JSON.stringify(text)}`, () => {
        expect(why(parseEtcdServers(text))).to.contain(expected);
      });
    }
  });

  describe('metadata', () => {
    it('reads pairs, trimming blanks and skipping empty items, as fleet', () => {
      expect(value(parseMetadata(' region = us-east , disk=ssd,,'))).to.deep.equal({
        region: 'us-east',
        disk: 'ssd',
      });
      expect(value(parseMetadata(''))).to.deep.equal({});
      expect(value(parseMetadata('a=b=c,e='))).to.deep.equal({ a: 'b=c', e: '' });
    });
    it('refuses an item without = and an empty key (fleet skipped them silently)', () => {
      expect(why(parseMetadata('region=us,ssd'))).to.equal('item "ssd" is not key=value');
      expect(why(parseMetadata('=x'))).to.equal('item "=x" has an empty key');
    });
    it('refuses a key given twice (fleet let the last win silently)', () => {
      expect(why(parseMetadata('a=1,a=2'))).to.equal('key "a" is given twice');
    });
  });

  describe('paths, prefixes, addresses, modes', () => {
    it('reads absolute paths; empty only where allowed', () => {
      expect(value(parsePath('/run/fleet/units/', false))).to.equal('/run/fleet/units/');
      expect(value(parsePath('', true))).to.equal('');
      expect(why(parsePath('', false))).to.equal('needs a path');
      expect(why(parsePath('run/fleet', true))).to.contain('is not an absolute path');
    });
    it('normalizes the key prefix to end in /', () => {
      expect(value(parseKeyPrefix('/fleet'))).to.equal('/fleet/');
      expect(value(parseKeyPrefix('/_coreos.com/fleet/'))).to.equal('/_coreos.com/fleet/');
      expect(why(parseKeyPrefix('fleet/'))).to.contain('must start with /');
      expect(why(parseKeyPrefix('/a b/'))).to.contain('whitespace');
    });
    it('reads IPv4 and IPv6 addresses, or empty for detection', () => {
      expect(['10.0.0.1', '::1', ''].map((t) => value(parseIpAddress(t)))).to.deep.equal([
        '10.0.0.1',
        '::1',
        '',
      ]);
      expect(why(parseIpAddress('host.example'))).to.contain('is not an IPv4 or IPv6 address');
      expect(why(parseIpAddress('10.0.0.256'))).to.contain('is not an IPv4 or IPv6 address');
    });
    it('reads octal file modes', () => {
      expect(['0660', '660', '0o600', '0777', '0'].map((t) => value(parseFileMode(t)))).to.deep.equal([
        0o660, 0o660, 0o600, 0o777, 0,
      ]);
      expect(why(parseFileMode('0860'))).to.contain('is not an octal file mode');
      expect(why(parseFileMode('01777'))).to.contain('is not an octal file mode');
      expect(why(parseFileMode('rw'))).to.contain('is not an octal file mode');
      expect(formatFileMode(0o660)).to.equal('0660');
      expect(formatFileMode(0o6)).to.equal('0006');
    });
    it('reads host:port and [ipv6]:port, or empty for none', () => {
      expect(value(parseHostPort('127.0.0.1:49153'))).to.deep.equal({ host: '127.0.0.1', port: 49153 });
      expect(value(parseHostPort('[::1]:8080'))).to.deep.equal({ host: '::1', port: 8080 });
      expect(value(parseHostPort('localhost:80'))).to.deep.equal({ host: 'localhost', port: 80 });
      expect(value(parseHostPort(''))).to.equal(undefined);
      expect(why(parseHostPort(':8080'))).to.contain('has no host');
      expect(why(parseHostPort('host'))).to.contain('is not host:port');
      expect(why(parseHostPort('::1:80'))).to.contain('is not host:port');
      expect(why(parseHostPort('[host]:80'))).to.contain('is not an IPv6 address');
      expect(why(parseHostPort('a:0'))).to.contain('out of range');
      expect(why(parseHostPort('a:70000'))).to.contain('out of range');
      expect(formatHostPort({ host: '::1', port: 1 })).to.equal('[::1]:1');
      expect(formatHostPort({ host: 'a', port: 1 })).to.equal('a:1');
    });
    it('tells loopback hosts', () => {
      expect(['127.0.0.1', '127.1.2.3', '::1', 'localhost', 'LOCALHOST'].every(isLoopbackHost)).to.equal(
        true,
      );
      expect(['10.0.0.1', '0.0.0.0', '::', 'example.com'].some(isLoopbackHost)).to.equal(false);
    });
    it('reads D-Bus addresses, or empty for the system bus', () => {
      expect(value(parseBusAddress('unix:path=/run/dbus/system_bus_socket'))).to.equal(
        'unix:path=/run/dbus/system_bus_socket',
      );
      expect(value(parseBusAddress('tcp:host=10.0.0.1,port=1234'))).to.equal('tcp:host=10.0.0.1,port=1234');
      expect(value(parseBusAddress(''))).to.equal('');
      expect(why(parseBusAddress('/run/dbus/system_bus_socket'))).to.contain('is not a D-Bus address');
      expect(why(parseBusAddress('unix:'))).to.contain('is not a D-Bus address');
    });
  });
});
