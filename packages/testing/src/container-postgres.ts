import { fileURLToPath } from 'node:url';

/** The repository's db/ directory (build context for db/Dockerfile), from both src/ and dist/. */
const dockerContext = fileURLToPath(new URL('../../../db/', import.meta.url));
const imageName = 'walflow-postgres-wal2json:15';

/** A PostgreSQL container started by testcontainers. */
export interface ContainerPostgres {
  url: string;
  stop(): Promise<void>;
}

/** True when a Docker (or compatible) engine answers; testcontainers is only loaded here, on demand. */
export async function containerRuntimeAvailable(): Promise<boolean> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

/** Builds db/Dockerfile (cached by Docker after the first run) and starts it with logical decoding on. */
export async function startContainerPostgres(): Promise<ContainerPostgres> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const image = await GenericContainer.fromDockerfile(dockerContext).build(imageName, { deleteOnExit: false });
  const container = await image
    .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust' })
    .withCommand([
      'postgres',
      ...['-c', 'wal_level=logical', '-c', 'max_replication_slots=64', '-c', 'max_wal_senders=64'],
      ...['-c', 'max_connections=300', '-c', 'fsync=off', '-c', 'full_page_writes=off'],
    ])
    .withExposedPorts(5432)
    // The entrypoint starts a temporary server for initialisation first, so the real one logs this second.
    .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
    .withStartupTimeout(120_000)
    .start();
  return {
    url: `postgres://postgres@${container.getHost()}:${container.getMappedPort(5432)}/postgres`,
    async stop() {
      await container.stop();
    },
  };
}
