import type { HealthLatency } from '../harness/health-probe.js';
import type { Measurement } from './result.js';

/** GET /health next to GET /healthz (which does nothing) of the same process under the same load. */
export function healthMeasurements(during: string, latency: HealthLatency): Measurement[] {
  return (['p50', 'p99'] as const).map((percentile) => ({
    name: `GET /health ${percentile} during ${during}`,
    value: latency.health[percentile],
    unit: 'ms',
    baseline: { name: `/healthz ${percentile}`, value: latency.healthz[percentile], unit: 'ms' },
    ratio: latency.health[percentile] / latency.healthz[percentile],
  }));
}
