// The tiering worker alone (study moves between storage tiers), against the shared PostgreSQL,
// Redis and object storage.
import { bootstrap } from '#vna/platform';

await bootstrap(['tiering']);
