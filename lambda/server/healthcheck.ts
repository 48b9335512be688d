/**
 * The image's HEALTHCHECK: exits 0 when the server on PORT is ready. A separate small bundle, so a
 * check every few seconds does not load onnxruntime.
 */
import * as http from 'node:http';

const port = Number(process.env.PORT || 8080);
const req = http.get({ host: '127.0.0.1', port, path: '/v2/health/ready', timeout: 2000 }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on('timeout', () => req.destroy(new Error('timed out')));
req.on('error', () => process.exit(1));
