import type { Peer } from './peer.js';
import { pollingOutbox } from './polling-outbox.js';
import { transactionalOutbox } from './transactional-outbox.js';

/** The peers of figure 5, by name. */
export const PEERS: readonly Peer[] = [pollingOutbox, transactionalOutbox];

export function peerNamed(name: string): Peer {
  const peer = PEERS.find((candidate) => candidate.name === name);
  if (peer === undefined) throw new Error(`no peer named ${name}; there are ${PEERS.map((candidate) => candidate.name).join(', ')}`);
  return peer;
}
