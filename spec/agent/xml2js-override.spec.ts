import { createRequire } from 'node:module';
import { expect } from 'chai';
import { describe, it } from 'mocha';

/**
 * dbus-next 0.10 depends on xml2js ^0.4, which lets a parsed document set `__proto__` keys
 * (prototype pollution, fixed in 0.5). dbus-next parses the introspection XML that D-Bus peers
 * send, so package.json overrides xml2js to 0.6. This checks the copy dbus-next actually loads.
 */
describe('xml2js as dbus-next loads it', () => {
  const fromDbus = createRequire(createRequire(import.meta.url).resolve('dbus-next'));

  it('is 0.5 or later (package.json overrides it)', () => {
    const { version } = fromDbus('xml2js/package.json') as { version: string };
    const [major = 0, minor = 0] = version.split('.').map(Number);
    expect(major > 0 || minor >= 5, `xml2js ${version}`).to.equal(true);
  });

  it("does not let an element named __proto__ replace a parsed object's prototype", async () => {
    const xml2js = fromDbus('xml2js') as {
      Parser: new (options: object) => { parseStringPromise(xml: string): Promise<unknown> };
    };
    const parsed = (await new xml2js.Parser({}).parseStringPromise(
      '<node><__proto__><polluted>yes</polluted></__proto__></node>',
    )) as { node: object };
    // xml2js 0.4 assigned obj.__proto__ = {...}: every key of it then showed through `node`.
    expect(Object.getPrototypeOf(parsed.node)).to.equal(Object.prototype);
    expect((parsed.node as Record<string, unknown>).polluted).to.equal(undefined);
  });
});
