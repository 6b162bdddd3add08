/** The walflow tenant of the agency: its events, workflows and notifications all carry it. */
export const TENANT = 'agency';
