// The ingest service alone, against the shared PostgreSQL, Redis and object storage.
import { bootstrap } from '#vna/platform';

await bootstrap(['ingest']);
