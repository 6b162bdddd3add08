import type { EventExplanation } from '@walflow/executor';
import { html, type SafeHtml } from './html.js';

const NODE_WIDTH = 200;
const NODE_HEIGHT = 36;
const ROW = 56;
const COLUMN = 216;
const EFFECTS_PER_ROW = 3;

interface Node {
  id: string;
  type: string;
  x: number;
  y: number;
  current: boolean;
}

/**
 * The causal chain both ways as inline SVG: the causes above (the root first), the event, and the events its
 * runs emitted below it. Every other node links to its own explain page.
 */
export function causalGraph({ event, causes, effects }: Pick<EventExplanation, 'event' | 'causes' | 'effects'>): SafeHtml {
  const centre = ((Math.min(Math.max(effects.length, 1), EFFECTS_PER_ROW) - 1) * COLUMN) / 2;
  const chain: Node[] = [...causes].reverse().map((cause, index) => ({ id: cause.id, type: cause.type, x: centre, y: index * ROW, current: false }));
  const self: Node = { id: event.id, type: event.type, x: centre, y: chain.length * ROW, current: true };
  const below = effects.map((effect, index) => ({
    id: effect.id,
    type: effect.type,
    x: (index % EFFECTS_PER_ROW) * COLUMN,
    y: self.y + (Math.floor(index / EFFECTS_PER_ROW) + 1) * ROW,
    current: false,
  }));
  const nodes = [...chain, self, ...below];
  const edges: [Node, Node][] = [
    ...chain.map((node, index): [Node, Node] => [node, chain[index + 1] ?? self]),
    ...below.map((node): [Node, Node] => [self, node]),
  ];
  const width = Math.max(...nodes.map((node) => node.x)) + NODE_WIDTH + 2;
  const height = Math.max(...nodes.map((node) => node.y)) + NODE_HEIGHT + 2;
  return html`<svg class="graph" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="causal chain">
  <defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="8" markerHeight="8" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#666"/></marker></defs>
  ${edges.map(
    ([from, to]) =>
      html`<line x1="${from.x + NODE_WIDTH / 2}" y1="${from.y + NODE_HEIGHT}" x2="${to.x + NODE_WIDTH / 2}" y2="${to.y}" stroke="#666" marker-end="url(#arrow)"/>`,
  )}
  ${nodes.map((node) => {
    const box = html`<rect x="${node.x + 1}" y="${node.y + 1}" width="${NODE_WIDTH}" height="${NODE_HEIGHT}" rx="6" fill="${node.current ? '#dbe9f6' : '#fff'}" stroke="${node.current ? '#2a6fb0' : '#999'}"/>
    <text x="${node.x + 10}" y="${node.y + 16}" font-size="12" font-weight="${node.current ? 'bold' : 'normal'}">${truncate(node.type, 28)}</text>
    <text x="${node.x + 10}" y="${node.y + 30}" font-size="10" fill="#555">${node.id.slice(0, 18)}…</text>`;
    return node.current ? box : html`<a href="/console/events/${node.id}">${box}</a>`;
  })}
</svg>`;
}

function truncate(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}
