import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

/** The parts of a V8 .cpuprofile (node --cpu-prof) the summary reads. */
interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }>;
  startTime: number;
  endTime: number;
  samples: number[];
}

export interface Hotspot {
  /** `function (file:line)`, or a V8 pseudo-frame such as (garbage collector). */
  frame: string;
  selfMs: number;
  selfPercent: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  /** Functions by the time spent in their own code. */
  functions: Hotspot[];
  /** The same, added up per package or dependency, which says where to look first. */
  modules: Hotspot[];
}

/** Summarises the newest .cpuprofile written into `dir`. */
export async function summariseCpuProfile(dir: string, repositoryRoot: string, limit = 20): Promise<ProfileSummary> {
  const files = (await readdir(dir)).filter((name) => name.endsWith('.cpuprofile')).sort();
  const file = files.at(-1);
  if (file === undefined) throw new Error(`no .cpuprofile in ${dir}`);
  const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile;
  const totalMs = (profile.endTime - profile.startTime) / 1000;
  const msPerSample = totalMs / Math.max(1, profile.samples.length);
  const byFunction = new Map<string, number>();
  const byModule = new Map<string, number>();
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const path = url.startsWith('file://') ? relative(repositoryRoot, new URL(url).pathname) : url;
    const frame = path === '' ? functionName || '(anonymous)' : `${functionName || '(anonymous)'} (${path}:${lineNumber + 1})`;
    byFunction.set(frame, (byFunction.get(frame) ?? 0) + hits);
    byModule.set(moduleOf(path, functionName), (byModule.get(moduleOf(path, functionName)) ?? 0) + hits);
  }
  const top = (map: Map<string, number>): Hotspot[] =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([frame, hits]) => ({ frame, selfMs: hits * msPerSample, selfPercent: (100 * hits) / Math.max(1, profile.samples.length) }));
  return { file: join(dir, file), totalMs, functions: top(byFunction), modules: top(byModule) };
}

/** `packages/executor`, `node_modules/pg-protocol`, `node:internal`, or the pseudo-frame itself. */
function moduleOf(path: string, functionName: string): string {
  if (path === '') return functionName;
  const dependency = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (dependency) return `node_modules/${dependency[1]}`;
  const workspace = /^(packages\/[^/]+|bench|examples\/[^/]+)/.exec(path);
  if (workspace) return workspace[1]!;
  if (path.startsWith('node:')) return path.split('/')[0]!.replace(/^node:internal.*/, 'node:internal');
  return path;
}
