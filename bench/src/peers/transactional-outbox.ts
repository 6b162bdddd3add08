import {
  DatabaseSetup,
  getDisabledLogger,
  initializeReplicationMessageListener,
  type GeneralMessageHandler,
  type ReplicationListenerConfig,
} from 'pg-transactional-outbox';
import { withClient } from '../harness/pg-client.js';
import { ORDER_PLACED, orderEvent, orderPayloadSql } from '../workload.js';
import { RECORDED_TABLE_SQL, type Peer } from './peer.js';

const SCHEMA = 'ptxo';
const TABLE = 'outbox';
const PUBLICATION = 'bench_ptxo_publication';

const slotOf = (database: string): string => `${database}_ptxo`;

/**
 * pg-transactional-outbox 0.5.7's logical-replication listener (pgoutput), configured as its README's outbox
 * example: default strategies (one message at a time, in commit order), no retry bookkeeping. Its handler
 * records the message in the transaction the library opens to mark the message processed.
 */
export const transactionalOutbox: Peer = {
  name: 'pg-transactional-outbox',
  description: 'pg-transactional-outbox 0.5.7: initializeReplicationMessageListener (pgoutput) with its default strategies (one message at a time, each in its own transaction that records it and marks it processed), retry and poison bookkeeping off as in its outbox example',
  async setup(url, database) {
    const config = { outboxOrInbox: 'outbox' as const, database, schema: SCHEMA, table: TABLE, listenerRole: 'postgres', publication: PUBLICATION, replicationSlot: slotOf(database) };
    await withClient(url, async (client) => {
      await client.query(RECORDED_TABLE_SQL);
      await client.query(DatabaseSetup.dropAndCreateTable(config));
      await client.query(DatabaseSetup.setupReplicationCore(config));
      // The library's own instructions: the slot in a transaction of its own.
      await client.query(DatabaseSetup.setupReplicationSlot(config));
    });
  },
  backlogInsert: `
    INSERT INTO ${SCHEMA}.${TABLE} (id, aggregate_type, aggregate_id, message_type, payload)
    SELECT gen_random_uuid(), 'order', 'order-' || n, '${ORDER_PLACED}', ${orderPayloadSql('n')} FROM generate_series($1 + 1, $1 + $2) AS n`,
  loadStatement(n) {
    const event = orderEvent(n);
    return {
      text: `INSERT INTO ${SCHEMA}.${TABLE} (id, aggregate_type, aggregate_id, message_type, payload) VALUES (gen_random_uuid(), $1, $2, $3, $4::jsonb)`,
      values: [event.aggregateType, event.aggregateId, event.type, JSON.stringify(event.payload)],
    };
  },
  // The library marks a message processed in the transaction its handler records it in.
  drained: `NOT EXISTS (SELECT FROM ${SCHEMA}.${TABLE} WHERE processed_at IS NULL)`,
  start(url, database) {
    const config: ReplicationListenerConfig = {
      outboxOrInbox: 'outbox',
      dbListenerConfig: { connectionString: url, application_name: 'walflow-bench-ptxo' },
      settings: {
        dbSchema: SCHEMA,
        dbTable: TABLE,
        dbPublication: PUBLICATION,
        dbReplicationSlot: slotOf(database),
        enableMaxAttemptsProtection: false,
        enablePoisonousMessageProtection: false,
        messageCleanupIntervalInMs: 0,
      },
    };
    const recorder: GeneralMessageHandler = {
      async handle(message, client) {
        await client.query(
          `INSERT INTO bench.recorded (id, event_type, aggregate_type, aggregate_id, payload, committed_at)
           VALUES ($1, $2, $3, $4, $5::jsonb, (SELECT pg_xact_commit_timestamp(xmin) FROM ${SCHEMA}.${TABLE} WHERE id = $1))`,
          [message.id, message.messageType, message.aggregateType, message.aggregateId, JSON.stringify(message.payload)],
        );
      },
    };
    const [shutdown] = initializeReplicationMessageListener(config, recorder, getDisabledLogger());
    return Promise.resolve({ stop: shutdown });
  },
};
