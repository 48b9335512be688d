/**
 * Data capture through the real InferenceService on real models: what the lines hold (inputs, outputs,
 * version, latency), sampling, redaction and hashing, row limits, and that a capture that breaks never
 * touches the response.
 */
import * as path from 'node:path';

import * as ort from 'onnxruntime-node';

import { hashValue, isCaptureRecord, type CaptureRecord } from '../../../lambda/core/capture-record';
import {
  checkCaptureConfig,
  DataCapturer,
  CONTAINER_CAPTURE_LINE_BYTES,
  MAX_CAPTURE_LINE_BYTES,
  type CaptureConfig,
} from '../../../lambda/core/capture';
import { openModel } from '../../../lambda/core/open';
import { InferenceService, type Telemetry } from '../../../lambda/core/service';
import type { InferResponse } from '../../../lambda/core/types';
import { mixedModel, removeDir, scalarModel, writeModel } from '../../fixtures/models';

const IRIS_DIR = path.join(__dirname, '..', '..', '..', 'models', 'iris');

const config = (over: Partial<CaptureConfig> = {}): CaptureConfig => ({
  percent: 100,
  redact: [],
  hash: [],
  maxRows: 1000,
  ...over,
});

interface Rig {
  service: InferenceService;
  lines: string[];
  failures: string[];
  captured: number[];
  records(): CaptureRecord[];
}

async function rig(
  location: string,
  capture: Partial<CaptureConfig> = {},
  options: ConstructorParameters<typeof DataCapturer>[2] = {},
  sink?: (line: string) => void,
): Promise<Rig> {
  const lines: string[] = [];
  const failures: string[] = [];
  const captured: number[] = [];
  const telemetry: Telemetry = {
    captured: (e) => captured.push(e.written),
    captureFailed: (e) => failures.push(e.error),
  };
  const capturer = new DataCapturer(config(capture), sink ?? ((l) => lines.push(l)), options);
  const service = new InferenceService({ capture: capturer, telemetry, sagemaker: true });
  await service.load({ location });
  return {
    service,
    lines,
    failures,
    captured,
    // The sink gets one write per request: the request's lines, each ending in a newline.
    records: () =>
      lines
        .flatMap((chunk) => {
          expect(chunk.endsWith('\n')).toBe(true);
          return chunk.slice(0, -1).split('\n');
        })
        .map((l) => {
          const parsed: unknown = JSON.parse(l);
          expect(isCaptureRecord(parsed)).toBe(true);
          return parsed as CaptureRecord;
        }),
  };
}

const infer = (
  service: InferenceService,
  model: string,
  body: unknown,
  headers: Record<string, string> = {},
) =>
  service.handle({
    method: 'POST',
    path: `/v2/models/${model}/infer`,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

const IRIS_ROWS = [
  [6.4, 3.2, 4.5, 1.5],
  [4.7, 3.2, 1.3, 0.2],
  [7.7, 2.6, 6.9, 2.3],
];
const irisRequest = (rows = IRIS_ROWS, id?: string) => ({
  ...(id ? { id } : {}),
  inputs: [{ name: 'input', shape: [rows.length, 4], datatype: 'FP32', data: rows.flat() }],
});

describe('data capture on the iris model', () => {
  let r: Rig;
  afterEach(async () => r?.service.close());

  it('writes one line per row with the inputs as sent, the outputs as answered, version and latency', async () => {
    r = await rig(IRIS_DIR, {}, { variant: 'blue', now: () => new Date('2026-11-22T05:00:00.000Z') });
    const res = await infer(r.service, 'iris', irisRequest(IRIS_ROWS, 'req-7'));
    expect(res.status).toBe(200);
    const answer = JSON.parse(res.body as string) as InferResponse;
    const probabilities = answer.outputs.find((o) => o.name === 'probabilities')?.data as number[];
    const labels = answer.outputs.find((o) => o.name === 'label')?.data as number[];

    const records = r.records();
    expect(records).toHaveLength(3);
    expect(r.lines).toHaveLength(1);
    records.forEach((rec, row) => {
      expect(rec).toMatchObject({
        mdk_capture: 1,
        time: '2026-11-22T05:00:00.000Z',
        model: 'iris',
        version: answer.model_version,
        variant: 'blue',
        request_id: 'req-7',
        row,
        rows: 3,
      });
      // Float32 inputs are written to 7 significant digits: 6.4, not 6.400000095.
      expect(rec.inputs).toEqual({ input: IRIS_ROWS[row] });
      expect(rec.outputs.label).toBe(labels[row]);
      const p = rec.outputs.probabilities as number[];
      // Float32 values keep 7 significant digits.
      p.forEach((v, i) => {
        const want = probabilities[row * 3 + i] as number;
        expect(Math.abs(v - want)).toBeLessThanOrEqual(Math.abs(want) * 1e-6);
        expect(v.toPrecision(7)).toBe(want.toPrecision(7));
      });
      expect(rec.latency_ms).toBeGreaterThan(0);
      expect(rec.redacted).toBeUndefined();
    });
    expect(r.captured).toEqual([3]);
    expect(r.failures).toEqual([]);
  });

  it('captures the instances form and SageMaker CSV the same way', async () => {
    r = await rig(IRIS_DIR);
    const a = await infer(r.service, 'iris', { instances: IRIS_ROWS.slice(0, 2) });
    const b = await r.service.handle({
      method: 'POST',
      path: '/invocations',
      headers: { 'content-type': 'text/csv' },
      body: '7.7,2.6,6.9,2.3\n',
    });
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(r.records().map((x) => x.inputs.input)).toEqual(IRIS_ROWS);
  });

  it('captures nothing for a request the service refuses', async () => {
    r = await rig(IRIS_DIR);
    const res = await infer(r.service, 'iris', {
      inputs: [{ name: 'input', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }],
    });
    expect(res.status).toBe(400);
    expect(r.lines).toEqual([]);
  });

  it('samples requests at the configured percentage', async () => {
    const draws = [0.1, 0.3, 0.24, 0.9, 0.249];
    r = await rig(IRIS_DIR, { percent: 25 }, { random: () => draws.shift() ?? 1 });
    for (let i = 0; i < 5; i++) {
      expect((await infer(r.service, 'iris', irisRequest([IRIS_ROWS[0] as number[]], `r${i}`))).status).toBe(
        200,
      );
    }
    // 0.1, 0.24 and 0.249 are under 25 %.
    expect(r.records().map((x) => x.request_id)).toEqual(['r0', 'r2', 'r4']);
  });

  it('redacts and hashes by input name or by baseline feature name', async () => {
    r = await rig(IRIS_DIR, { redact: ['petal_length'], hash: ['sepal_width'] });
    await infer(r.service, 'iris', irisRequest([IRIS_ROWS[0] as number[]]));
    const [rec] = r.records();
    expect(rec?.inputs.input).toEqual([6.4, hashValue(3.2), null, 1.5]);
    expect(rec?.redacted).toEqual(['petal_length']);
    expect(rec?.hashed).toEqual(['sepal_width']);
    expect(hashValue(3.2)).toMatch(/^sha256:[0-9a-f]{16}$/);

    const whole = await rig(IRIS_DIR, { redact: ['input'] });
    await infer(whole.service, 'iris', irisRequest([IRIS_ROWS[0] as number[]]));
    expect(whole.records()[0]?.inputs.input).toEqual([null, null, null, null]);
    await whole.service.close();
  });

  it('turns capture off, and says why, when a redact or hash name matches nothing (fail closed)', async () => {
    r = await rig(IRIS_DIR, { redact: ['petal_lenght'] });
    expect(r.failures).toEqual([
      "capture is off for model 'iris': 'petal_lenght' names no input or baseline feature (known: input, sepal_length, sepal_width, petal_length, petal_width)",
    ]);
    const res = await infer(r.service, 'iris', irisRequest());
    expect(res.status).toBe(200);
    expect(r.lines).toEqual([]);
  });

  it('spreads the rows it keeps over a request bigger than maxRows', async () => {
    r = await rig(IRIS_DIR, { maxRows: 4 });
    const rows = Array.from({ length: 10 }, (_, i) => [5 + i / 10, 3, 4, 1]);
    await infer(r.service, 'iris', irisRequest(rows));
    expect(r.records().map((x) => [x.row, x.rows])).toEqual([
      [0, 10],
      [2, 10],
      [5, 10],
      [7, 10],
    ]);
    expect(r.records()[1]?.inputs.input).toEqual(rows[2]);
  });

  it('serves the request when the sink throws, and reports the failure', async () => {
    r = await rig(IRIS_DIR, {}, {}, () => {
      throw new Error('EPIPE: stdout is gone');
    });
    const res = await infer(r.service, 'iris', irisRequest());
    expect(res.status).toBe(200);
    expect(r.failures).toEqual(['EPIPE: stdout is gone']);
  });
});

describe('data capture of other tensor kinds', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach(removeDir));

  it('writes int64, bool and string rows as JSON scalars, and a big int64 as a decimal string', async () => {
    const w = writeModel(mixedModel());
    dirs.push(w.root);
    const r = await rig(w.dir);
    const big = '1152921504606846976'; // 2^60, past Number's exact integers
    const res = await infer(r.service, 'fixture', {
      inputs: [
        { name: 'ids', shape: [2], datatype: 'INT64', data: [41, big] },
        { name: 'mask', shape: [2], datatype: 'BOOL', data: [true, false] },
        { name: 'text', shape: [2], datatype: 'BYTES', data: ['héllo', 'x'] },
      ],
    });
    expect(res.status).toBe(200);
    expect(r.records().map((x) => [x.inputs, x.outputs])).toEqual([
      [
        { ids: 41, mask: true, text: 'héllo' },
        { next_ids: 42, not_mask: false, text_out: 'héllo' },
      ],
      [
        { ids: big, mask: false, text: 'x' },
        { next_ids: '1152921504606846977', not_mask: true, text_out: 'x' },
      ],
    ]);
    await r.service.close();
  });

  it('repeats an input without a batch axis (a scalar) on every row', async () => {
    const w = writeModel(scalarModel());
    dirs.push(w.root);
    const r = await rig(w.dir);
    await infer(r.service, 'fixture', {
      inputs: [
        { name: 'x', shape: [2, 2], datatype: 'FP32', data: [1, 2, 3, 4] },
        { name: 'scale', shape: [], datatype: 'FP32', data: [0.5] },
      ],
    });
    expect(r.records().map((x) => [x.inputs, x.outputs])).toEqual([
      [{ x: [1, 2], scale: 0.5 }, { y: [0.5, 1] }],
      [{ x: [3, 4], scale: 0.5 }, { y: [1.5, 2] }],
    ]);
    await r.service.close();
  });

  it('skips a row whose line would be over the CloudWatch Logs event limit, and counts it', async () => {
    const { model } = await openModel({ location: IRIS_DIR });
    const lines: string[] = [];
    const capturer = new DataCapturer(config(), (l) => lines.push(l));
    const huge = new ort.Tensor('string', ['a'.repeat(MAX_CAPTURE_LINE_BYTES), 'b'], [2]);
    const small = new ort.Tensor('float32', new Float32Array([1, 2]), [2]);
    const outcome = capturer.capture({
      model,
      requestId: undefined,
      feeds: { note: huge },
      results: { y: small },
      rows: 2,
      latencyMs: 1,
    });
    expect(outcome).toEqual({ written: 1, skipped: 1 });
    expect((JSON.parse(lines[0] as string) as CaptureRecord).inputs).toEqual({ note: 'b' });
    // The container's sink carries 16 KiB lines whole (Docker splits longer ones): a 20 KB row is skipped there.
    const container = new DataCapturer(config(), (l) => lines.push(l), {
      maxLineBytes: CONTAINER_CAPTURE_LINE_BYTES,
    });
    const wide = new ort.Tensor('string', ['c'.repeat(20_000), 'd'.repeat(10_000)], [2]);
    expect(
      container.capture({
        model,
        requestId: undefined,
        feeds: { note: wide },
        results: {},
        rows: 2,
        latencyMs: 1,
      }),
    ).toEqual({
      written: 1,
      skipped: 1,
    });
    await model.release();
  });
});

describe('checkCaptureConfig', () => {
  it.each([
    [{ percent: 101 }, 'the capture percentage must be from 0 to 100, got 101'],
    [{ percent: -1 }, 'the capture percentage must be from 0 to 100, got -1'],
    [{ maxRows: 0 }, "the capture's rows per request must be a positive integer, got 0"],
    [
      { redact: ['a', 'b'], hash: ['b'] },
      "'b' is both redacted and hashed; choose one (redact writes null, hash writes sha256:...)",
    ],
    [{ hash: [' a'] }, 'capture field names must be non-empty with no spaces around them, got " a"'],
  ])('refuses %j', (over, message) => {
    expect(() => checkCaptureConfig(config(over))).toThrow(message);
  });
});
