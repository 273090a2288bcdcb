// Benchmark helper: s3rver 3.7.1 (a TEST S3-compatible server, not a production S3) as a
// background process, started the way test/support/s3rver.ts starts it (path-style buckets, any
// credentials, request signatures checked). Runs until SIGTERM/SIGINT.
//   node deploy/bench/s3rver.cjs PORT DIRECTORY
const S3rver = require('s3rver');
const [port, directory, bucket] = [Number(process.argv[2] ?? 4569), process.argv[3], process.argv[4] ?? 'vna-warm'];
if (!directory) { console.error('usage: s3rver.cjs PORT DIRECTORY'); process.exit(2); }
const server = new S3rver({ address: '127.0.0.1', port, silent: true, directory, resetOnClose: false, allowMismatchedSignatures: false, vhostBuckets: false, configureBuckets: [{ name: bucket }] });
// s3rver's file store removes a directory once its last object is deleted; a PUT into that same
// directory at the same moment fails with ENOENT and s3rver dies (unhandled stream error). The
// archive writes every object to `.tmp/<uuid>` first and deletes it after the copy, with several
// copies in flight: a permanent object keeps `.tmp/` from ever being empty. (Anonymous PUT.)
server.run().then(({ port: p }) => {
  const req = require('node:http').request({ host: '127.0.0.1', port: p, method: 'PUT', path: `/${bucket}/.tmp/keep-dir` }, (res) => {
    res.resume();
    console.log(`s3rver listening on 127.0.0.1:${p}, data in ${directory}, bucket ${bucket} (.tmp/keep-dir: ${res.statusCode})`);
  });
  req.end('keep');
});
const stop = () => { server.httpServer?.closeAllConnections(); server.close().finally(() => process.exit(0)); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
