import type { EmitEvent } from '@walflow/core';
import type { WorkflowDefinitionInput } from '@walflow/executor';

/** Every event the bench writes has this type, or a `bench.*` type of the same shape. */
export const ORDER_PLACED = 'bench.order_placed';

/**
 * The one workflow matching each event. Its action is create_notification: the cheapest action there is, one
 * row written in the run's own transaction and nothing outside PostgreSQL (emit_event would feed every run's
 * event back into the stream, update_field would make all runs contend for the rows they update).
 */
export const NOTIFY_ON_ORDER: WorkflowDefinitionInput = {
  name: 'bench-notify-on-order',
  trigger: { event: 'bench.*' },
  actions: [{ type: 'create_notification', recipient: '{{event.payload.customer}}', title: 'Order {{event.aggregateId}} placed' }],
};

/** The payload of order number `n`, about 110 bytes of JSON; events differ in aggregate, so no ordering waits. */
export function orderPayload(n: number): Record<string, unknown> {
  return { orderId: `order-${n}`, customer: `customer-${n % 1000}`, amount: (n % 500) + 0.5, currency: 'EUR', lines: 3 };
}

export function orderEvent(n: number, type = ORDER_PLACED): EmitEvent {
  return { type, aggregateType: 'order', aggregateId: `order-${n}`, payload: orderPayload(n) };
}

/** orderPayload in SQL, for backlogs written inside the server; `n` is an integer expression. */
export function orderPayloadSql(n: string): string {
  return `jsonb_build_object('orderId', 'order-' || ${n}, 'customer', 'customer-' || (${n} % 1000), 'amount', (${n} % 500) + 0.5, 'currency', 'EUR', 'lines', 3)`;
}

/** The rows `walflow.emit` would write for orders $1+1 … $1+$2: the walflow side of every backlog. */
export const WALFLOW_BACKLOG_INSERT = `
  INSERT INTO walflow.outbox (event_type, aggregate_type, aggregate_id, payload)
  SELECT '${ORDER_PLACED}', 'order', 'order-' || n, ${orderPayloadSql('n')}
    FROM generate_series($1 + 1, $1 + $2) AS n`;
