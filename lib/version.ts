import { readFileSync } from 'node:fs';

/**
 * The fleet-ts version, read once from the package.json that ships beside the compiled code
 * (dist/lib/version.js -> ../../package.json).
 */
export const VERSION: string = (() => {
  const pkg: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  if (typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string') {
    return pkg.version;
  }
  return '0.0.0+unknown';
})();
