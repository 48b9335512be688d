/**
 * The drift handler end to end against moto's S3 and CloudWatch: the iris manifest (with its baseline) in a
 * model bucket for two versions, a day of captures for each as Firehose files them (gzipped JSONL under
 * captures/model=/version=/date=/), one drawn from the baseline's own distribution and one with petal_length
 * moved up two standard deviations. A scheduled event runs the handler module as Lambda would load it; the
 * metrics are read back with GetMetricData and the reports from S3.
 */
import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { capturePrefix } from '../../../lambda/core/capture-record';
import type { DriftJobSummary, StoredDriftReport } from '../../../lambda/core/drift-job';
import { gzipLines, irisManifest, sampleRecords, seeded } from '../../support/capture-samples';
import {
  loadHandlerInMoto,
  motoClientConfig,
  motoS3Client,
  startMoto,
  type MotoServer,
} from '../../support/moto';

type DriftHandler = typeof import('../../../lambda/handlers/drift');

const MODELS = 'models';
const CAPTURES = 'captures';
const HOUR = 3600 * 1000;
const manifest = irisManifest();
const MODEL = manifest.name;
const STABLE = manifest.version;
const SHIFTED = '9.0.0';
// Within CloudWatch's two weeks, as a scheduled run's would be: the last whole hour.
const END = new Date(Math.floor(Date.now() / HOUR) * HOUR);

let moto: MotoServer;
let s3: S3Client;
let cloudwatch: CloudWatchClient;
let summary: DriftJobSummary;
const savedEnv = { ...process.env };

async function putCaptures(version: string, shift?: Record<string, number>, seed = 1): Promise<void> {
  const from = END.getTime() - 6 * HOUR;
  const records = sampleRecords(manifest.baseline, 600, {
    model: MODEL,
    version,
    shift,
    random: seeded(seed),
    time: (i) => new Date(from + i * 30_000),
  });
  // One object per day the records fall in, as Firehose's date partition would file them.
  const days = new Map<string, typeof records>();
  for (const r of records) days.set(r.time.slice(0, 10), [...(days.get(r.time.slice(0, 10)) ?? []), r]);
  for (const [day, rows] of days) {
    await s3.send(
      new PutObjectCommand({
        Bucket: CAPTURES,
        Key: `${capturePrefix(MODEL, version, day)}captures-1-${day}.gz`,
        Body: gzipLines(rows),
      }),
    );
  }
}

/** The Maximum of a metric in ModelDeployKit at the window's end. */
async function metric(name: string, dims: Record<string, string>): Promise<number[]> {
  const res = await cloudwatch.send(
    new GetMetricDataCommand({
      StartTime: new Date(END.getTime() - HOUR),
      EndTime: new Date(END.getTime() + HOUR),
      MetricDataQueries: [
        {
          Id: 'm',
          MetricStat: {
            Metric: {
              Namespace: 'ModelDeployKit',
              MetricName: name,
              Dimensions: Object.entries(dims).map(([Name, Value]) => ({ Name, Value })),
            },
            Period: 300,
            Stat: 'Maximum',
          },
        },
      ],
    }),
  );
  return res.MetricDataResults?.[0]?.Values ?? [];
}

beforeAll(async () => {
  moto = await startMoto();
  s3 = motoS3Client(moto.endpoint);
  cloudwatch = new CloudWatchClient(motoClientConfig(moto.endpoint));
  await s3.send(new CreateBucketCommand({ Bucket: MODELS }));
  await s3.send(new CreateBucketCommand({ Bucket: CAPTURES }));
  for (const version of [STABLE, SHIFTED]) {
    await s3.send(
      new PutObjectCommand({
        Bucket: MODELS,
        Key: `${MODEL}/${version}/model.json`,
        Body: JSON.stringify({ ...manifest, version }),
      }),
    );
  }
  const petal = manifest.baseline.features.find((f) => f.name === 'petal_length');
  if (!petal || petal.kind === 'categorical') throw new Error('iris has no numeric petal_length');
  await putCaptures(STABLE);
  await putCaptures(SHIFTED, { petal_length: 2 * petal.std }, 2);

  Object.assign(process.env, { CAPTURE_BUCKET: CAPTURES, MODEL_BUCKET: MODELS, MODEL_NAME: MODEL });
  const drift = loadHandlerInMoto<DriftHandler>(moto.endpoint, 'drift');
  summary = await drift.handler({
    version: '0',
    id: '7bf73129-1428-4cd3-a780-95db273d1602',
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '123456789012',
    time: END.toISOString().replace('.000Z', 'Z'),
    region: 'us-east-1',
    resources: ['arn:aws:events:us-east-1:123456789012:rule/drift-hourly'],
    detail: {},
  });
});

afterAll(async () => {
  process.env = savedEnv;
  s3?.destroy();
  cloudwatch?.destroy();
  await moto?.stop();
});

test('the run covers the 24 hours up to the scheduled time, both versions, all rows', () => {
  expect(summary.window).toEqual({
    start: new Date(END.getTime() - 24 * HOUR).toISOString(),
    end: END.toISOString(),
  });
  expect(summary.versions.map((v) => [v.version, v.rows, v.badLines, v.outsideWindow])).toEqual([
    [STABLE, 600, 0, 0],
    [SHIFTED, 600, 0, 0],
  ]);
  expect(summary.metricsSkipped).toBeUndefined();
});

test('the shifted version publishes petal_length drift over the 0.2 threshold, the stable one under it', async () => {
  const shifted = await metric('FeaturePSI', { model: MODEL, version: SHIFTED, feature: 'petal_length' });
  const stable = await metric('FeaturePSI', { model: MODEL, version: STABLE, feature: 'petal_length' });
  expect(shifted).toHaveLength(1);
  expect(shifted[0]).toBeGreaterThanOrEqual(0.2);
  expect(stable).toHaveLength(1);
  expect(stable[0]).toBeLessThan(0.2);

  const maxShifted = await metric('MaxFeaturePSI', { model: MODEL, version: SHIFTED });
  const maxStable = await metric('MaxFeaturePSI', { model: MODEL, version: STABLE });
  expect(maxShifted[0]).toBeGreaterThanOrEqual(0.2);
  expect(maxStable[0]).toBeLessThan(0.2);
  // The model's alarm metric is the worse version's.
  expect(await metric('MaxFeaturePSI', { model: MODEL })).toEqual(maxShifted);
  // Every other feature of the shifted version stays under the threshold.
  for (const f of manifest.baseline.features.filter((x) => x.name !== 'petal_length')) {
    const [v] = await metric('FeaturePSI', { model: MODEL, version: SHIFTED, feature: f.name });
    expect(v).toBeLessThan(0.2);
  }
});

test('prediction drift, the class mix by label and the captured rows are published', async () => {
  expect(await metric('CapturedRows', { model: MODEL })).toEqual([1200]);
  expect(await metric('CapturedRows', { model: MODEL, version: SHIFTED })).toEqual([600]);
  const [predictionPsi] = await metric('PredictionPSI', { model: MODEL, version: STABLE });
  expect(predictionPsi).toBeLessThan(0.2);
  const labels = manifest.labels ?? [];
  expect(labels.length).toBeGreaterThan(0);
  let total = 0;
  for (const label of labels) {
    const [share] = await metric('ClassShare', { model: MODEL, class: label });
    expect(share).toBeGreaterThan(0);
    total += share ?? 0;
  }
  expect(total).toBeCloseTo(100, 2);
});

test('each version has a JSON report under drift-reports/, by model, version and day', async () => {
  const listed = await s3.send(
    new ListObjectsV2Command({ Bucket: CAPTURES, Prefix: `drift-reports/model=${MODEL}/` }),
  );
  const day = END.toISOString().slice(0, 10);
  const name = `${END.toISOString().replace(/:/g, '-')}.json`;
  expect((listed.Contents ?? []).map((o) => o.Key).sort()).toEqual(
    [STABLE, SHIFTED].map((v) => `drift-reports/model=${MODEL}/version=${v}/date=${day}/${name}`).sort(),
  );
  const read = async (key: string) => {
    const res = await s3.send(new GetObjectCommand({ Bucket: CAPTURES, Key: key }));
    return JSON.parse((await res.Body?.transformToString('utf8')) ?? '') as StoredDriftReport;
  };
  const shifted = await read(summary.versions.find((v) => v.version === SHIFTED)?.report ?? '');
  expect(shifted).toMatchObject({
    model: MODEL,
    version: SHIFTED,
    rows: 600,
    threshold: 0.2,
    drifted: ['petal_length'],
  });
  expect(shifted.generatedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
  expect(shifted.features.find((f) => f.name === 'petal_length')?.psi).toBeGreaterThanOrEqual(0.2);
  const stable = await read(summary.versions.find((v) => v.version === STABLE)?.report ?? '');
  expect(stable.drifted).toEqual([]);
  expect(Object.keys(stable.classShare ?? {}).sort()).toEqual([...(manifest.labels ?? [])].sort());
});

test('a missing setting fails the function at load, naming it', () => {
  delete process.env.MODEL_BUCKET;
  expect(() => loadHandlerInMoto<DriftHandler>(moto.endpoint, 'drift')).toThrow(
    'MODEL_BUCKET is not set: give the bucket that holds <name>/<version>/model.json',
  );
});
