// Benchmark helper: s3rver 3.7.1 (a TEST S3-compatible server, not a production S3) as a
// background process, started the way test/support/s3rver.ts starts it (path-style buckets, any
// credentials, request signatures checked). Runs until SIGTERM/SIGINT.
//   node deploy/bench/s3rver.cjs PORT DIRECTORY
const S3rver = require('s3rver');
const [port, directory] = [Number(process.argv[2] ?? 4569), process.argv[3]];
if (!directory) { console.error('usage: s3rver.cjs PORT DIRECTORY'); process.exit(2); }
const server = new S3rver({ address: '127.0.0.1', port, silent: true, directory, resetOnClose: false, allowMismatchedSignatures: false, vhostBuckets: false });
server.run().then(({ port: p }) => console.log(`s3rver listening on 127.0.0.1:${p}, data in ${directory}`));
const stop = () => { server.httpServer?.closeAllConnections(); server.close().finally(() => process.exit(0)); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
