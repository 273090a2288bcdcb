// The all-in-one archive: every role in one process (VNA_ROLES narrows it). The default start.
import { bootstrap } from '#vna/platform';

await bootstrap();
