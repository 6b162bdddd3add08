import { setTimeout as sleep } from 'node:timers/promises';
import { distribution, type Distribution } from './percentiles.js';

/** Pause between two requests: a busy load balancer, not a flood. */
const INTERVAL_MS = 20;

export interface HealthLatency {
  /** GET /health, the cached report. */
  health: Distribution;
  /** GET /healthz, which does nothing: the baseline of the same process under the same load. */
  healthz: Distribution;
  failures: number;
}

export interface HealthProbe {
  stop(): Promise<HealthLatency>;
}

/** Requests /health and /healthz alternately until stopped, timing each. */
export function probeHealth(port: number): HealthProbe {
  const timings: Record<'health' | 'healthz', number[]> = { health: [], healthz: [] };
  let failures = 0;
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const path = i % 2 === 0 ? 'health' : 'healthz';
      const started = performance.now();
      try {
        const response = await fetch(`http://127.0.0.1:${port}/${path}`);
        await response.arrayBuffer();
        timings[path].push(performance.now() - started);
      } catch {
        failures++;
      }
      await sleep(INTERVAL_MS);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { health: distribution(timings.health), healthz: distribution(timings.healthz), failures };
    },
  };
}
