/**
 * A real Orthanc (Debian's /usr/sbin/Orthanc) as the legacy archive of migration tests: its own
 * config, index and storage in a temporary directory, DICOM and HTTP on free ports, TCP_NODELAY=1
 * (Debian's DCMTK keeps Nagle on otherwise). The archive is registered as a modality, so Orthanc
 * accepts it as a caller and as a C-MOVE destination (`setModality` after the archive restarts on
 * another port). With `dicomWeb`, Orthanc loads Debian's DICOMweb plugin (package
 * orthanc-dicomweb) and serves QIDO-RS / WADO-RS under `dicomWebRoot`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, run, sleep, storeResponses } from './archive.js';

export interface OrthancOptions {
  aeTitle?: string;
  /** Modalities Orthanc knows: name → [AET, host, port]. */
  modalities?: Record<string, [string, string, number]>;
  /** Load the DICOMweb plugin (QIDO-RS, WADO-RS at `${http}/dicom-web`). */
  dicomWeb?: boolean;
  /** Orthanc's own cap of answers per C-FIND / QIDO at the study level (LimitFindResults; 0 = none). */
  limitFindResults?: number;
  /** HTTP users (name → password): the REST API and DICOMweb then require HTTP Basic authentication. */
  users?: Record<string, string>;
}

/** Where Debian's orthanc-dicomweb package puts the plugin. */
export const ORTHANC_DICOMWEB_PLUGIN = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';

export class Orthanc {
  child?: ChildProcess;
  dir = '';
  aeTitle = 'LEGACY';
  dicomPort = 0;
  http = '';
  logFile = '';
  /** Headers of this helper's own REST calls (Basic authentication when `users` are set). */
  auth: Record<string, string> = {};

  /** The DICOMweb root (with `dicomWeb`). */
  get dicomWebRoot(): string {
    return `${this.http}/dicom-web`;
  }

  static async start(options: OrthancOptions = {}): Promise<Orthanc> {
    const o = new Orthanc();
    o.aeTitle = options.aeTitle ?? 'LEGACY';
    o.dir = mkdtempSync(path.join(tmpdir(), 'vna-orthanc-'));
    o.dicomPort = await freePort();
    const httpPort = await freePort();
    o.http = `http://127.0.0.1:${httpPort}`;
    const config = {
      Name: 'VNA-MIGRATION-SOURCE',
      StorageDirectory: path.join(o.dir, 'storage'),
      IndexDirectory: path.join(o.dir, 'index'),
      StorageCompression: false,
      // No in-memory cache of stored files: a test can take a file away from under Orthanc.
      MaximumStorageCacheSize: 0,
      Plugins: options.dicomWeb ? [ORTHANC_DICOMWEB_PLUGIN] : [],
      ...(options.dicomWeb ? { DicomWeb: { Enable: true, Root: '/dicom-web/' } } : {}),
      LimitFindResults: options.limitFindResults ?? 0,
      HttpServerEnabled: true,
      HttpPort: httpPort,
      RemoteAccessAllowed: false,
      AuthenticationEnabled: Boolean(options.users),
      ...(options.users ? { RegisteredUsers: options.users } : {}),
      DicomServerEnabled: true,
      DicomAet: o.aeTitle,
      DicomPort: o.dicomPort,
      DicomCheckCalledAet: false,
      DicomAlwaysAllowStore: true,
      DicomModalities: options.modalities ?? {},
    };
    const file = path.join(o.dir, 'orthanc.json');
    writeFileSync(file, JSON.stringify(config, null, 2));
    const [user] = Object.entries(options.users ?? {});
    if (user) o.auth = { Authorization: `Basic ${Buffer.from(`${user[0]}:${user[1]}`).toString('base64')}` };
    o.logFile = path.join(o.dir, 'orthanc.log');
    const log = createWriteStream(o.logFile);
    o.child = spawn('/usr/sbin/Orthanc', [file], { env: { ...process.env, TCP_NODELAY: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    o.child.stdout!.pipe(log);
    o.child.stderr!.pipe(log);
    for (let i = 0; i < 300; i++) {
      if (o.child.exitCode !== null) throw new Error(`Orthanc exited: ${o.logTail()}`);
      try {
        const r = await fetch(`${o.http}/system`, { headers: o.auth });
        const web = options.dicomWeb ? (await fetch(`${o.dicomWebRoot}/studies`, { headers: o.auth })).ok : true;
        if (r.ok && web) {
          const echo = await run('echoscu', ['-aec', o.aeTitle, '127.0.0.1', String(o.dicomPort)]);
          if (echo.code === 0) return o;
        }
      } catch {
        // not up yet
      }
      await sleep(100);
    }
    throw new Error(`Orthanc did not come up: ${o.logTail()}`);
  }

  logTail(lines = 30): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  /** Add or change a modality (Orthanc's REST API; kept in memory). */
  async setModality(name: string, aeTitle: string, host: string, port: number): Promise<void> {
    const r = await fetch(`${this.http}/modalities/${name}`, {
      method: 'PUT',
      headers: this.auth,
      body: JSON.stringify({ AET: aeTitle, Host: host, Port: port }),
    });
    if (!r.ok) throw new Error(`PUT /modalities/${name}: ${r.status} ${await r.text()}`);
  }

  /** C-STORE these files into Orthanc with storescu; every one must succeed. */
  async store(files: string[]): Promise<void> {
    const r = await run('storescu', ['-v', '-aet', 'LOADER', '-aec', this.aeTitle, '127.0.0.1', String(this.dicomPort), ...files]);
    const s = storeResponses(r.stdout + r.stderr);
    if (r.code !== 0 || s.ok !== files.length) throw new Error(`storescu into Orthanc: ${s.ok}/${files.length} stored:\n${r.stderr.slice(-2000)}`);
  }

  /** Where Orthanc keeps the file of an instance (by SOP Instance UID). */
  async storedFileOf(sopInstanceUid: string): Promise<string> {
    const lookup = (await (await fetch(`${this.http}/tools/lookup`, { method: 'POST', headers: this.auth, body: sopInstanceUid })).json()) as Array<{ ID: string; Type: string }>;
    const id = lookup.find((l) => l.Type === 'Instance')?.ID;
    if (!id) throw new Error(`Orthanc does not know ${sopInstanceUid}`);
    const info = (await (await fetch(`${this.http}/instances/${id}/attachments/dicom/info`, { headers: this.auth })).json()) as { Uuid: string };
    return path.join(this.dir, 'storage', info.Uuid.slice(0, 2), info.Uuid.slice(2, 4), info.Uuid);
  }

  async statistics(): Promise<{ CountStudies: number; CountInstances: number }> {
    const r = await fetch(`${this.http}/statistics`, { headers: this.auth });
    return (await r.json()) as { CountStudies: number; CountInstances: number };
  }

  async stop(): Promise<void> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      const gone = new Promise((r) => this.child!.once('exit', r));
      this.child.kill('SIGTERM');
      await Promise.race([gone, sleep(10_000).then(() => this.child!.kill('SIGKILL'))]);
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
