import { expect } from 'chai';
import { after, afterEach, before, describe, it } from 'mocha';
import * as path from 'node:path';

import { InMemorySystemdManager } from '../../agent/in-memory-systemd-manager.js';
import { Engine } from '../../engine/engine.js';
import { ApiServer } from '../../fleetd/api/server.js';
import { buildConfig } from '../../fleetd/config.js';
import { meteredSystemd } from '../../fleetd/metered-systemd.js';
import { FleetMetrics } from '../../fleetd/metrics.js';
import { MetricsListener } from '../../fleetd/metrics-listener.js';
import { systemClock } from '../../lib/clock.js';
import { MemoryLogger } from '../../lib/logger.js';
import { EtcdRegistry } from '../../registry/etcd-registry.js';
import { InMemoryRegistry } from '../../registry/in-memory-registry.js';
import { useEtcd } from '../../systemd-fixtures/etcd/etcd-harness.js';
import { eventually } from '../../systemd-fixtures/eventually.js';
import { httpRequest, type HttpTarget } from '../helpers/http.js';
import { machineRecord, unitRecord } from '../helpers/registry-builders.js';
import { tempDir } from './api/api-harness.js';

/** The value of one series in an exposition text, or undefined when it is absent. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    if (line.slice(0, space) === series) return Number(line.slice(space + 1));
  }
  return undefined;
}

describe('fleetd metrics', function () {
  this.timeout(20_000);
  let socketDir: { dir: string; cleanup(): Promise<void> };
  const closers: (() => Promise<unknown>)[] = [];

  before(async () => {
    socketDir = await tempDir('fleet-metrics-');
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });
  after(async () => {
    await socketDir.cleanup();
  });

  async function serve(
    metrics: FleetMetrics | undefined,
    ready = true,
  ): Promise<{ unix: HttpTarget; tcp: HttpTarget }> {
    const server = new ApiServer({
      registry: new InMemoryRegistry(),
      logger: new MemoryLogger(),
      ready: () => ready,
      ...(metrics === undefined ? {} : { metrics, scrape: () => metrics.scrape() }),
    });
    closers.push(() => server.close());
    const socketPath = path.join(socketDir.dir, `api-${closers.length}.sock`);
    await server.listenUnix(socketPath);
    const { port } = await server.listenTcp({ host: '127.0.0.1', port: 0, allowPlainHttpOnLoopback: true });
    return { unix: { kind: 'unix', socketPath }, tcp: { kind: 'tcp', host: '127.0.0.1', port } };
  }

  it('serves Prometheus text on GET /metrics over the unix socket and TCP, process defaults included', async () => {
    const { unix, tcp } = await serve(new FleetMetrics());
    for (const target of [unix, tcp]) {
      const reply = await httpRequest(target, 'GET', '/metrics');
      expect(reply.status).to.equal(200);
      expect(reply.headers['content-type']).to.match(/^text\/plain; version=0\.0\.4/);
      expect(sample(reply.body, 'fleet_engine_leader')).to.equal(0);
      expect(reply.body).to.match(/^process_cpu_user_seconds_total \d/m);
      expect(reply.body).to.match(/^process_resident_memory_bytes \d/m);
      expect(reply.body).to.match(/^nodejs_eventloop_lag_seconds \d/m);
    }
  });

  it('counts API requests by route, method and status code', async () => {
    const { unix } = await serve(new FleetMetrics());
    expect((await httpRequest(unix, 'GET', '/fleet/v1/units/nope.service')).status).to.equal(404);
    expect((await httpRequest(unix, 'GET', '/fleet/v1/units')).status).to.equal(200);
    const text = (await httpRequest(unix, 'GET', '/metrics')).body;
    expect(sample(text, 'fleet_api_requests_total{route="units/<name>",method="GET",code="404"}')).to.equal(
      1,
    );
    expect(sample(text, 'fleet_api_requests_total{route="units",method="GET",code="200"}')).to.equal(1);
    expect(text).not.to.contain('nope.service');
  });

  it('serves /metrics while the API answers 503 (the machine not yet announced)', async () => {
    const { unix } = await serve(new FleetMetrics(), false);
    expect((await httpRequest(unix, 'GET', '/fleet/v1/units')).status).to.equal(503);
    expect((await httpRequest(unix, 'GET', '/metrics')).status).to.equal(200);
  });

  it('answers /metrics with 404 on a server without metrics, and other methods with 405', async () => {
    const without = await serve(undefined);
    expect((await httpRequest(without.unix, 'GET', '/metrics')).status).to.equal(404);
    const withMetrics = await serve(new FleetMetrics());
    expect((await httpRequest(withMetrics.unix, 'POST', '/metrics')).status).to.equal(405);
  });

  it("shows the leader's view of the cluster, with bounded labels", async () => {
    const registry = new InMemoryRegistry();
    const presence = await registry.announceMachine(machineRecord('m1'), 10);
    closers.push(() => presence.close());
    await registry.submitUnit(unitRecord('a.service'), 'launched');
    await registry.submitUnit(unitRecord('b.service'), 'loaded');
    await registry.submitUnit(unitRecord('c.service'), 'inactive');
    await registry.submitUnit(unitRecord('nowhere.service', ['MachineMetadata=role=none']), 'launched');
    const metrics = new FleetMetrics();
    const engine = new Engine({
      machineId: 'm1',
      registry,
      clock: systemClock,
      logger: new MemoryLogger(),
      config: { reconcileIntervalMs: 1000, leaseTtlSeconds: 5 },
      metrics,
    });
    closers.push(() => engine.close());
    metrics.setSources({ engine: () => engine.view(), clusterStates: () => registry.listUnitStates() });
    const before = (await metrics.scrape()).body;
    expect(sample(before, 'fleet_engine_leader')).to.equal(0);
    expect(sample(before, 'fleet_units{desired_state="launched"}')).to.equal(0);
    engine.start();
    await eventually(() => {
      expect(engine.view().unplaceable).to.equal(1);
    });
    const text = (await metrics.scrape()).body;
    expect(sample(text, 'fleet_engine_leader')).to.equal(1);
    expect(sample(text, 'fleet_machines')).to.equal(1);
    expect(sample(text, 'fleet_units{desired_state="launched"}')).to.equal(2);
    expect(sample(text, 'fleet_units{desired_state="loaded"}')).to.equal(1);
    expect(sample(text, 'fleet_units{desired_state="inactive"}')).to.equal(1);
    expect(sample(text, 'fleet_units_unplaceable')).to.equal(1);
    expect(text).to.match(/^fleet_engine_reconcile_duration_seconds_count\{result="ok"\} [1-9]/m);
    expect(text).not.to.contain('.service');
  });

  it("counts systemd jobs by result and this machine's units by active state", async () => {
    const inner = new InMemorySystemdManager();
    const metrics = new FleetMetrics();
    const systemd = meteredSystemd(inner, metrics);
    metrics.setSources({ localUnits: async () => systemd.unitStatus(await systemd.listUnitFiles()) });
    await systemd.installUnit('a.service', '[Service]\nExecStart=/bin/true\n');
    await systemd.installUnit('b.service', '[Service]\nExecStart=/bin/true\n');
    await systemd.reload();
    expect(await systemd.startUnit('a.service')).to.equal('done');
    const text = (await metrics.scrape()).body;
    expect(sample(text, 'fleet_systemd_jobs_total{job="start",result="done"}')).to.equal(1);
    expect(sample(text, 'fleet_systemd_job_duration_seconds_count{job="start"}')).to.equal(1);
    expect(sample(text, 'fleet_local_units{active_state="active"}')).to.equal(1);
    expect(sample(text, 'fleet_local_units{active_state="inactive"}')).to.equal(1);
  });

  it('serves /metrics and nothing else on the metrics_listen listener', async () => {
    const metrics = new FleetMetrics();
    const { listener, port } = await MetricsListener.listen({
      host: '127.0.0.1',
      port: 0,
      scrape: () => metrics.scrape(),
      logger: new MemoryLogger(),
    });
    closers.push(() => listener.close());
    const target: HttpTarget = { kind: 'tcp', host: '127.0.0.1', port };
    const ok = await httpRequest(target, 'GET', '/metrics');
    expect(ok.status).to.equal(200);
    expect(sample(ok.body, 'fleet_engine_leader')).to.equal(0);
    expect((await httpRequest(target, 'GET', '/fleet/v1/units')).status).to.equal(404);
    expect((await httpRequest(target, 'PUT', '/metrics', { body: 'x' })).status).to.equal(405);
  });

  it('takes metrics_listen as HOST:PORT, off by default', () => {
    const off = buildConfig({ argv: [], env: {} });
    expect(off.ok && off.config.metricsListen).to.equal(undefined);
    const on = buildConfig({ argv: ['--metrics-listen=0.0.0.0:9101'], env: {} });
    expect(on.ok && on.config.metricsListen).to.deep.equal({ host: '0.0.0.0', port: 9101 });
    const badValue = buildConfig({ argv: ['--metrics-listen=nope'], env: {} });
    expect(badValue.ok).to.equal(false);
  });

  describe('on real etcd', () => {
    const etcd = useEtcd();

    it('counts etcd requests by operation and result, with their latency', async () => {
      const metrics = new FleetMetrics();
      const registry = new EtcdRegistry({
        endpoints: [etcd.current.clientUrl],
        prefix: `/fleet-metrics-${process.pid}/`,
        requestTimeoutMs: 1500,
        metrics,
      });
      closers.push(() => registry.close());
      await registry.submitUnit(unitRecord('a.service'), 'launched');
      await registry.listUnits();
      await registry.listUnits();
      const text = (await metrics.scrape()).body;
      expect(sample(text, 'fleet_etcd_requests_total{op="submitUnit",result="ok"}')).to.be.at.least(1);
      expect(sample(text, 'fleet_etcd_requests_total{op="listUnits",result="ok"}')).to.be.at.least(2);
      expect(sample(text, 'fleet_etcd_request_duration_seconds_count{op="listUnits"}')).to.be.at.least(2);
      await etcd.current.kill();
      try {
        await registry.listUnits().catch(() => undefined);
      } finally {
        await etcd.current.restart();
      }
      const after = (await metrics.scrape()).body;
      expect(sample(after, 'fleet_etcd_requests_total{op="listUnits",result="error"}')).to.be.at.least(1);
    });
  });
});
