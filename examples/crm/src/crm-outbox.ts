import { createOutbox } from '@walflow/outbox';
import { catalog } from './catalog.js';

/** The typed outbox every service writes its events through. */
export const outbox = createOutbox(catalog);
