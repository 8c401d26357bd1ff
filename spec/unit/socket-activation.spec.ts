import { expect } from 'chai';
import { describe, it } from 'mocha';

import { activatedServiceOf, type SocketUnitOption } from '../../unit/socket-activation.js';

const socket = (...lines: string[]): SocketUnitOption[] => [
  { section: 'Socket', name: 'ListenStream', value: '7000' },
  ...lines.map((line) => {
    const eq = line.indexOf('=');
    return { section: 'Socket', name: line.slice(0, eq), value: line.slice(eq + 1) };
  }),
];

describe('unit/socket-activation: activatedServiceOf', () => {
  const cases: { title: string; name: string; options: SocketUnitOption[]; want: string | undefined }[] = [
    {
      title: 'pairs foo.socket with foo.service',
      name: 'foo.socket',
      options: socket(),
      want: 'foo.service',
    },
    {
      title: 'keeps dots of the name (only the last suffix changes)',
      name: 'a.b.socket',
      options: socket(),
      want: 'a.b.service',
    },
    {
      title: 'pairs a socket instance with the service instance of the same name',
      name: 'foo@a.socket',
      options: socket(),
      want: 'foo@a.service',
    },
    {
      title: 'takes Service= when set',
      name: 'foo.socket',
      options: socket('Service=bar.service'),
      want: 'bar.service',
    },
    {
      title: 'takes the last valid Service=',
      name: 'foo.socket',
      options: socket('Service=bar.service', 'Service=baz.service'),
      want: 'baz.service',
    },
    {
      title: 'ignores a Service= that is not a service, as systemd does',
      name: 'foo.socket',
      options: socket('Service=bar.service', 'Service=bar.target'),
      want: 'bar.service',
    },
    {
      title: 'ignores an empty or invalid Service=',
      name: 'foo.socket',
      options: socket('Service=', 'Service=no/such.service'),
      want: 'foo.service',
    },
    {
      title: 'ignores a Service= naming a template',
      name: 'foo.socket',
      options: socket('Service=bar@.service'),
      want: 'foo.service',
    },
    {
      title: 'expands %p, %n, %N and %i in Service=',
      name: 'web@a.socket',
      options: socket('Service=%p-%i.service'),
      want: 'web-a.service',
    },
    {
      title: 'gives up on a Service= with a specifier it cannot resolve',
      name: 'foo.socket',
      options: socket('Service=foo-%H.service'),
      want: undefined,
    },
    {
      title: 'pairs an Accept=yes socket with the template of its instances',
      name: 'greet.socket',
      options: socket('Accept=yes'),
      want: 'greet@.service',
    },
    {
      title: 'reads Accept= as a systemd boolean, case-insensitively',
      name: 'greet.socket',
      options: socket('Accept=On'),
      want: 'greet@.service',
    },
    {
      title: 'lets the last valid Accept= win and ignores an invalid one',
      name: 'greet.socket',
      options: socket('Accept=yes', 'Accept=maybe', 'Accept=0'),
      want: 'greet.service',
    },
    {
      title: 'uses the prefix before @ for the template of an Accept=yes socket instance',
      name: 'greet@v6.socket',
      options: socket('Accept=true'),
      want: 'greet@.service',
    },
    {
      title: 'gives nothing for Accept=yes with Service=, which systemd refuses to load',
      name: 'greet.socket',
      options: socket('Accept=yes', 'Service=greet.service'),
      want: undefined,
    },
    {
      title: 'reads only the [Socket] section',
      name: 'foo.socket',
      options: [
        { section: 'Unit', name: 'Service', value: 'bar.service' },
        { section: 'Service', name: 'Accept', value: 'yes' },
      ],
      want: 'foo.service',
    },
    { title: 'gives nothing for a service', name: 'foo.service', options: socket(), want: undefined },
    { title: 'gives nothing for a socket template', name: 'foo@.socket', options: socket(), want: undefined },
    { title: 'gives nothing for a name without a type', name: 'foo', options: socket(), want: undefined },
  ];
  for (const c of cases) {
    it(c.title, () => {
      expect(activatedServiceOf(c.name, c.options)).to.equal(c.want);
    });
  }
});
