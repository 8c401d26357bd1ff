import { expect } from 'chai';
import { describe, it } from 'mocha';

import { triggeredUnitOf, triggerTypeOf } from '../../unit/trigger-units.js';

/** `[Section] Name=value` lines as stored options. */
function opts(...lines: string[]): { section: string; name: string; value: string }[] {
  return lines.map((l) => {
    const m = /^\[(\w+)\] (\w+)=(.*)$/.exec(l);
    if (m === null) throw new Error(`bad option line ${l}`);
    return { section: m[1] ?? '', name: m[2] ?? '', value: m[3] ?? '' };
  });
}

describe('unit/trigger-units: triggeredUnitOf', () => {
  const cases: readonly { title: string; name: string; options?: string[]; want: string | undefined }[] = [
    { title: 'a timer starts the service of its name', name: 'tick.timer', want: 'tick.service' },
    { title: 'a timer instance starts the instance of its name', name: 'job@a.timer', want: 'job@a.service' },
    { title: 'a timer template is no unit', name: 'job@.timer', want: undefined },
    {
      title: 'a timer starts what [Timer] Unit= names',
      name: 'nightly.timer',
      options: ['[Timer] OnCalendar=daily', '[Timer] Unit=backup.service'],
      want: 'backup.service',
    },
    {
      title: 'the first valid Unit= wins; later values are ignored (systemd: "Multiple units to trigger")',
      name: 'nightly.timer',
      options: ['[Timer] Unit=first.service', '[Timer] Unit=second.service'],
      want: 'first.service',
    },
    {
      title: 'a Unit= of the trigger type, a template or an invalid name is ignored',
      name: 'n.timer',
      options: [
        '[Timer] Unit=other.timer',
        '[Timer] Unit=tpl@.service',
        '[Timer] Unit=no suffix',
        '[Timer] Unit=ok.target',
      ],
      want: 'ok.target',
    },
    {
      title: 'Unit= in another section does not count',
      name: 'n.timer',
      options: ['[Unit] Unit=x.service', '[Path] Unit=y.service'],
      want: 'n.service',
    },
    {
      title: 'Unit= specifiers are expanded for the trigger',
      name: 'in@x.path',
      options: ['[Path] PathChanged=/tmp/%i', '[Path] Unit=handle-%p@%i.service'],
      want: 'handle-in@x.service',
    },
    {
      title: 'a Unit= with a specifier systemd resolves on the machine cannot be known here',
      name: 'n.path',
      options: ['[Path] Unit=n-%H.service'],
      want: undefined,
    },
    { title: 'a path unit starts the service of its name', name: 'watch.path', want: 'watch.service' },
    {
      title: 'an automount starts the mount of its name',
      name: 'srv-data.automount',
      want: 'srv-data.mount',
    },
    { title: 'a socket starts its service (activatedServiceOf)', name: 'echo.socket', want: 'echo.service' },
    {
      title: 'an Accept=yes socket starts instances of the template',
      name: 'greet.socket',
      options: ['[Socket] Accept=yes'],
      want: 'greet@.service',
    },
    { title: 'a service triggers nothing', name: 'tick.service', want: undefined },
  ];
  for (const c of cases) {
    it(c.title, () => {
      expect(triggeredUnitOf(c.name, opts(...(c.options ?? [])))).to.equal(c.want);
    });
  }

  it('knows the four trigger types', () => {
    expect(
      ['a.socket', 'a.timer', 'a.path', 'a.automount', 'a.service', 'a.mount', 'a'].map(triggerTypeOf),
    ).to.deep.equal(['socket', 'timer', 'path', 'automount', undefined, undefined, undefined]);
  });
});
