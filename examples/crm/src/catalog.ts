import { defineCatalog, defineEvent } from '@walflow/core';
import { z } from 'zod';

/** The events of the agency's back office, with the payload each must carry. */
export const catalog = defineCatalog(
  defineEvent('recruit.graduated_to_agent', z.object({ recruitId: z.string(), name: z.string() })),
  defineEvent('agent.onboarding_started', z.object({ recruitId: z.string(), name: z.string() })),
);
