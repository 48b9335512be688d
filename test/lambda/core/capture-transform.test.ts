import { gzipSync } from 'node:zlib';
import type { FirehoseTransformationEventRecord } from 'aws-lambda';
import { CAPTURE_FORMAT, type CaptureRecord } from '../../../lambda/core/capture-record';
import {
  MAX_RESPONSE_BYTES,
  RECORD_OVERHEAD_BYTES,
  transformCaptureRecords,
  type LogsSubscriptionEnvelope,
} from '../../../lambda/core/capture-transform';

function capture(row: number, over: Partial<CaptureRecord> = {}): CaptureRecord {
  return {
    mdk_capture: CAPTURE_FORMAT,
    time: '2026-11-22T04:00:00.000Z',
    model: 'iris',
    version: '1.1.0',
    row,
    rows: 3,
    latency_ms: 1.25,
    inputs: { input: [5.1, 3.5, 1.4, 0.2 + row] },
    outputs: { label: 0, probabilities: [0.9, 0.05, 0.05] },
    ...over,
  };
}

/** What CloudWatch Logs sends a subscription: the envelope, gzipped, as a Firehose record carries it. */
function envelope(
  messages: string[],
  over: Partial<LogsSubscriptionEnvelope> = {},
): LogsSubscriptionEnvelope {
  return {
    messageType: 'DATA_MESSAGE',
    owner: '123456789012',
    logGroup: '/aws/lambda/api',
    logStream: '2026/11/22/[$LATEST]abc',
    subscriptionFilters: ['capture'],
    logEvents: messages.map((message, i) => ({ id: String(i), timestamp: 1_795_000_000_000 + i, message })),
    ...over,
  };
}

let nextId = 0;
function record(body: Buffer | object): FirehoseTransformationEventRecord {
  const raw = Buffer.isBuffer(body) ? body : gzipSync(JSON.stringify(body));
  return {
    recordId: `r${nextId++}`,
    approximateArrivalTimestamp: 1_795_000_000_000,
    data: raw.toString('base64'),
  };
}

const decoded = (data: string | undefined): string => Buffer.from(data ?? '', 'base64').toString('utf8');

// Lines a serving Lambda writes besides captures.
const EMF_LINE = JSON.stringify({
  _aws: {
    Timestamp: 1_795_000_000_000,
    CloudWatchMetrics: [{ Namespace: 'ModelDeployKit', Dimensions: [['model']], Metrics: [{ Name: 'X' }] }],
  },
  model: 'iris',
  InferenceLatency: 0.4,
});
const POWERTOOLS_LINE = JSON.stringify({
  level: 'INFO',
  message: 'captured rows; mdk_capture lines follow',
  service: 'model-deploy-kit',
  timestamp: '2026-11-22T04:00:00.000Z',
  mdk_capture_written: 3,
});
const PLAIN_LINES = [
  'START RequestId: 0f6c Version: $LATEST',
  'END RequestId: 0f6c',
  'REPORT RequestId: 0f6c\tDuration: 2.10 ms',
];

describe('transformCaptureRecords', () => {
  test('keeps the capture lines of a data message as JSON lines, with model and version as partition keys', () => {
    const lines = [0, 1, 2].map((i) => JSON.stringify(capture(i)));
    const input = record(envelope(lines));
    const { records, stats } = transformCaptureRecords([input]);
    expect(records).toEqual([
      {
        recordId: input.recordId,
        result: 'Ok',
        data: expect.any(String) as unknown,
        metadata: { partitionKeys: { model: 'iris', version: '1.1.0' } },
      },
    ]);
    expect(decoded(records[0]?.data)).toBe(`${lines.join('\n')}\n`);
    expect(stats).toMatchObject({
      records: 1,
      ok: 1,
      dropped: 0,
      failed: {},
      captureLines: 3,
      otherLines: 0,
    });
  });

  test('leaves out EMF metrics, Powertools logs, runtime lines and JSON that is not a capture record', () => {
    const kept = [capture(0), capture(1, { variant: 'b', request_id: 'req-1' }), capture(2)].map((r) =>
      JSON.stringify(r),
    );
    const notCaptures = [
      EMF_LINE,
      POWERTOOLS_LINE,
      ...PLAIN_LINES,
      JSON.stringify({ ...capture(3), mdk_capture: 2 }), // a later format this transform does not know
      JSON.stringify({ ...capture(4), mdk_capture: '1' }),
      JSON.stringify({ mdk_capture: 1, model: 'iris' }), // no version, inputs or outputs
      '{"mdk_capture": 1, "model": "iris", ', // cut short
    ];
    const messages = [
      notCaptures[0],
      kept[0],
      ...notCaptures.slice(1, 4),
      kept[1],
      ...notCaptures.slice(4),
      kept[2],
    ];
    const { records, stats } = transformCaptureRecords([record(envelope(messages as string[]))]);
    expect(records[0]?.result).toBe('Ok');
    expect(decoded(records[0]?.data)).toBe(`${kept.join('\n')}\n`);
    expect(stats).toMatchObject({ captureLines: 3, otherLines: notCaptures.length });
  });

  test('a line with trailing whitespace is trimmed, and one written over several lines is put on one', () => {
    const pretty = JSON.stringify(capture(0), null, 2);
    const { records } = transformCaptureRecords([
      record(envelope([`${JSON.stringify(capture(1))}\n`, pretty])),
    ]);
    const out = decoded(records[0]?.data).split('\n');
    expect(out).toHaveLength(3);
    expect(out[2]).toBe('');
    expect(JSON.parse(out[0] ?? '')).toEqual(capture(1));
    expect(JSON.parse(out[1] ?? '')).toEqual(capture(0));
  });

  test('a control message, and a data message with no capture record, are dropped', () => {
    const control = record(
      envelope(['CWL CONTROL MESSAGE: Checking health of destination Firehose.'], {
        messageType: 'CONTROL_MESSAGE',
        logGroup: '',
        logStream: '',
      }),
    );
    const none = record(envelope([EMF_LINE, POWERTOOLS_LINE, ...PLAIN_LINES]));
    const { records, stats } = transformCaptureRecords([control, none]);
    expect(records).toEqual([
      { recordId: control.recordId, result: 'Dropped', data: '' },
      { recordId: none.recordId, result: 'Dropped', data: '' },
    ]);
    expect(stats).toMatchObject({ ok: 0, dropped: 2, captureLines: 0, otherLines: 5 });
  });

  test('what cannot be read fails with its original data, and the other records still go through', () => {
    const notGzip = record(Buffer.from('not gzip at all'));
    const notJson = record(gzipSync('{"messageType": "DATA_MESSAGE", '));
    const notEnvelope = record({ hello: 'world' });
    const unknownType = record(
      envelope([JSON.stringify(capture(0))], { messageType: 'OTHER' as 'DATA_MESSAGE' }),
    );
    const good = record(envelope([JSON.stringify(capture(0))]));
    const { records, stats } = transformCaptureRecords([notGzip, notJson, notEnvelope, unknownType, good]);
    expect(records.slice(0, 4)).toEqual(
      [notGzip, notJson, notEnvelope, unknownType].map((r) => ({
        recordId: r.recordId,
        result: 'ProcessingFailed',
        data: r.data,
      })),
    );
    expect(records[4]).toMatchObject({ recordId: good.recordId, result: 'Ok' });
    expect(stats.failed).toEqual({ gzip: 1, json: 1, envelope: 2 });
  });

  test('a model or version that is not a safe S3 key segment fails rather than file under a broken prefix', () => {
    const bad = [
      capture(0, { model: '../other' }),
      capture(0, { version: '1/2' }),
      capture(0, { model: '' }),
      capture(0, { version: 'v'.repeat(65) }),
    ].map((c) => record(envelope([JSON.stringify(c)])));
    const { records, stats } = transformCaptureRecords(bad);
    expect(records.map((r) => r.result)).toEqual(bad.map(() => 'ProcessingFailed'));
    expect(stats.failed).toEqual({ partition: 4 });
  });

  test('captures of two versions in one envelope go under the first, and are reported with their counts', () => {
    const lines = [
      capture(0),
      capture(1, { version: '1.2.0' }),
      capture(2),
      capture(0, { model: 'fraud', version: '3' }),
    ].map((c) => JSON.stringify(c));
    const input = record(envelope(lines));
    const { records, mixed } = transformCaptureRecords([input]);
    expect(records[0]?.metadata).toEqual({ partitionKeys: { model: 'iris', version: '1.1.0' } });
    expect(decoded(records[0]?.data)).toBe(`${lines.join('\n')}\n`);
    expect(mixed).toEqual([
      {
        recordId: input.recordId,
        logGroup: '/aws/lambda/api',
        logStream: '2026/11/22/[$LATEST]abc',
        counts: { 'iris/1.1.0': 2, 'iris/1.2.0': 1, 'fraud/3': 1 },
      },
    ]);
  });

  test('the response stays under Lambda’s 6 MB: records whose output would not fit fail, the rest go through', () => {
    // ~2 MiB of capture lines per envelope; gzip makes each input a few KiB, as CloudWatch Logs would.
    const big = (tag: number) => {
      const lines: string[] = [];
      for (let size = 0, i = 0; size < 2 * 1024 * 1024; i++) {
        const line = JSON.stringify(capture(i, { request_id: `req-${tag}-${i}` }));
        lines.push(line);
        size += line.length + 1;
      }
      return record(envelope(lines));
    };
    const small = record(envelope([JSON.stringify(capture(0))]));
    const inputs = [big(1), big(2), big(3), small];
    const { records, stats } = transformCaptureRecords(inputs);
    // Two outputs of ~2.7 MiB base64 fit in 5.5 MiB; the third does not; the small one still does.
    expect(records.map((r) => r.result)).toEqual(['Ok', 'Ok', 'ProcessingFailed', 'Ok']);
    expect(records[2]?.data).toBe(inputs[2]?.data);
    expect(stats.failed).toEqual({ 'too-large': 1 });
    const responseBytes = Buffer.byteLength(JSON.stringify({ records }));
    expect(responseBytes).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
    expect(responseBytes).toBeGreaterThan(5 * 1024 * 1024);
  });

  test('a smaller limit is honoured exactly, counting failed records’ original data', () => {
    const lines = (tag: number) =>
      Array.from({ length: 50 }, (_, i) => JSON.stringify(capture(i, { request_id: `${tag}` })));
    const inputs = [0, 1, 2].map((i) => record(envelope(lines(i))));
    const outputBytes = Buffer.from(`${lines(0).join('\n')}\n`).toString('base64').length;
    const inputBytes = inputs.map((r) => r.data.length);
    expect(outputBytes).toBeGreaterThan(4 * Math.max(...inputBytes));
    // Room for one output and two failures (their original data back), not for two outputs.
    const limit =
      outputBytes +
      RECORD_OVERHEAD_BYTES +
      (inputBytes[1] ?? 0) +
      (inputBytes[2] ?? 0) +
      2 * RECORD_OVERHEAD_BYTES;
    const { records } = transformCaptureRecords(inputs, { maxResponseBytes: limit });
    expect(records.map((r) => r.result)).toEqual(['Ok', 'ProcessingFailed', 'ProcessingFailed']);
    expect(Buffer.byteLength(JSON.stringify({ records }))).toBeLessThanOrEqual(limit);
    // One byte less and not even the first fits.
    const tighter = transformCaptureRecords(inputs, { maxResponseBytes: limit - 1 });
    expect(tighter.records.map((r) => r.result)).toEqual([
      'ProcessingFailed',
      'ProcessingFailed',
      'ProcessingFailed',
    ]);
  });

  test('an envelope that inflates past the response limit fails without being inflated whole', () => {
    const bomb = record(gzipSync(Buffer.alloc(8 * 1024 * 1024, 0x20)));
    expect(Buffer.from(bomb.data, 'base64').length).toBeLessThan(64 * 1024);
    const { records, stats } = transformCaptureRecords([bomb]);
    expect(records[0]?.result).toBe('ProcessingFailed');
    expect(stats.failed).toEqual({ 'too-large': 1 });
  });

  test('an empty batch gives an empty answer', () => {
    expect(transformCaptureRecords([]).records).toEqual([]);
  });
});
