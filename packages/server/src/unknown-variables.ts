/** Variables walflow does not read but that carry its prefix: a typo such as WALFLOW_RETENTION_DAY. */
const PREFIX = 'WALFLOW_';
/** Read by walflow's own test suite, bench and demo, never by a running walflow. */
const OWN_PREFIXES = ['WALFLOW_TEST_', 'WALFLOW_DEMO_'];
/** At most this many edits away, a known name is offered as the one meant. */
const MAX_DISTANCE = 3;

export interface UnknownVariable {
  name: string;
  /** The known name it most likely misspells. */
  didYouMean?: string;
}

/**
 * The `WALFLOW_*` names in the environment that are neither `known` nor taken by a known prefix (secrets). A
 * misspelt setting would otherwise leave its default in force without a word.
 */
export function unknownVariables(environment: Record<string, string | undefined>, known: readonly string[], knownPrefixes: readonly string[]): UnknownVariable[] {
  const knownNames = new Set(known);
  return Object.keys(environment)
    .filter((name) => name.startsWith(PREFIX) && !OWN_PREFIXES.some((prefix) => name.startsWith(prefix)) && !knownNames.has(name))
    .filter((name) => !knownPrefixes.some((prefix) => name.startsWith(prefix)))
    .sort()
    .map((name) => {
      const closest = known
        .map((candidate) => ({ candidate, distance: editDistance(name, candidate) }))
        .sort((a, b) => a.distance - b.distance)[0];
      return closest !== undefined && closest.distance <= MAX_DISTANCE ? { name, didYouMean: closest.candidate } : { name };
    });
}

/** Levenshtein distance, one row at a time. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
