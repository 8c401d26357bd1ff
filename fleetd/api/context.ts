import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import type { OutputRelay } from '../../registry/output-relay.js';
import type {
  DrainStore,
  EventStore,
  MachineStore,
  ScheduleStore,
  UnitStateStore,
  UnitStore,
} from '../../registry/registry.js';

/**
 * The part of the registry the API uses: units and their desired states, where units are placed
 * and why some cannot be, machines, and the states agents report. A full `Registry` fits.
 */
export type ApiRegistry = Pick<
  UnitStore,
  'submitUnit' | 'getUnit' | 'listUnits' | 'setDesiredState' | 'destroyUnit'
> &
  Pick<ScheduleStore, 'getPlacement' | 'listSchedule' | 'getUnplaceable' | 'listUnplaceable'> &
  Pick<MachineStore, 'listMachines' | 'changeMachineMetadata'> &
  Pick<DrainStore, 'getDrain' | 'listDrains' | 'setDrain' | 'clearDrain'> &
  UnitStateStore &
  Pick<OutputRelay, 'requestOutput'> &
  Pick<EventStore, 'listEvents' | 'watchEvents'>;

/** What every handler gets. */
export interface ApiContext {
  readonly registry: ApiRegistry;
  /** The page size of list endpoints, and the limit every page token must carry. */
  readonly tokenLimit: number;
  readonly logger: Logger;
  /** Renders the Prometheus metrics; absent when the server has none (then `/metrics` is 404). */
  readonly scrape?: () => Promise<MetricsScrape>;
  /** Time for what the API stamps (a drain's request time); the system clock when absent. */
  readonly clock?: Clock;
}

/** A Prometheus scrape: the exposition text and its content type. */
export interface MetricsScrape {
  readonly contentType: string;
  readonly body: string;
}
