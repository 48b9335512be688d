/**
 * The drift job's core: its environment, window and line reading on their own, then whole runs against moto's
 * S3 and CloudWatch with captures laid out as Firehose files them.
 */
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import {
  CloudWatchClient,
  GetMetricDataCommand,
  StandardUnit,
  type MetricDatum,
} from '@aws-sdk/client-cloudwatch';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type GetObjectCommandInput,
  type ListObjectsV2CommandInput,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import {
  captureLines,
  capturePrefix,
  CAPTURE_FORMAT,
  MAX_LINE_CHARS,
} from '../../../lambda/core/capture-record';
import type { DriftReport } from '../../../lambda/core/drift';
import {
  driftJobConfigFromEnv,
  driftMetrics,
  driftWindow,
  reportKey,
  runDriftJob,
  windowDays,
  type DriftJobConfig,
  type StoredDriftReport,
} from '../../../lambda/core/drift-job';
import { gzipLines, irisManifest, sampleRecords, seeded } from '../../support/capture-samples';
import { motoClientConfig, motoS3Client, startMoto, type MotoServer } from '../../support/moto';

const ENV = { CAPTURE_BUCKET: 'cap', MODEL_BUCKET: 'models', MODEL_NAME: 'iris' };

describe('config from the environment', () => {
  test('defaults', () => {
    expect(driftJobConfigFromEnv(ENV)).toEqual({
      captureBucket: 'cap',
      capturePrefix: 'captures/',
      reportPrefix: 'drift-reports/',
      modelBucket: 'models',
      modelName: 'iris',
      windowHours: 24,
      minRows: 100,
      psiThreshold: 0.2,
      namespace: 'ModelDeployKit',
    });
    expect(
      driftJobConfigFromEnv({
        ...ENV,
        CAPTURE_PREFIX: 'c/',
        REPORT_PREFIX: 'r/x/',
        WINDOW_HOURS: '1.5',
        MIN_ROWS: '0',
        PSI_THRESHOLD: '0.1',
        METRIC_NAMESPACE: 'Mine',
      }),
    ).toMatchObject({
      capturePrefix: 'c/',
      reportPrefix: 'r/x/',
      windowHours: 1.5,
      minRows: 0,
      psiThreshold: 0.1,
      namespace: 'Mine',
    });
  });

  test.each([
    [{ MODEL_NAME: '' }, 'MODEL_NAME is not set'],
    [{ CAPTURE_BUCKET: undefined }, 'CAPTURE_BUCKET is not set'],
    [{ MODEL_BUCKET: ' ' }, 'MODEL_BUCKET is not set'],
    [{ MODEL_NAME: 'a/b' }, `MODEL_NAME must not contain '/', got "a/b"`],
    [{ CAPTURE_PREFIX: 'captures' }, `CAPTURE_PREFIX must be a key prefix ending in '/'`],
    [{ WINDOW_HOURS: '0' }, 'WINDOW_HOURS must be a number over 0, got "0"'],
    [{ WINDOW_HOURS: 'day' }, 'WINDOW_HOURS must be a number over 0, got "day"'],
    [{ PSI_THRESHOLD: '-1' }, 'PSI_THRESHOLD must be a number over 0, got "-1"'],
    [{ MIN_ROWS: '1.5' }, 'MIN_ROWS must be 0 or a positive integer, got "1.5"'],
    [{ METRIC_NAMESPACE: 'AWS/Lambda' }, `METRIC_NAMESPACE must not start with 'AWS/'`],
  ])('%p is refused: %s', (change, message) => {
    expect(() => driftJobConfigFromEnv({ ...ENV, ...change })).toThrow(message);
  });
});

describe('the window', () => {
  const config = driftJobConfigFromEnv(ENV);
  const now = new Date('2026-11-22T04:30:00Z');

  test('a scheduled event ends at its scheduled time, so a retry covers the same window', () => {
    const event = { source: 'aws.events', 'detail-type': 'Scheduled Event', time: '2026-11-22T04:00:00Z' };
    expect(driftWindow(event, config, now)).toEqual({
      start: new Date('2026-11-21T04:00:00Z'),
      end: new Date('2026-11-22T04:00:00Z'),
    });
  });

  test('a manual run may set the end and the hours; nothing set is the configured window up to now', () => {
    expect(driftWindow({}, config, now)).toEqual({ start: new Date('2026-11-21T04:30:00Z'), end: now });
    expect(driftWindow(undefined, config, now).end).toEqual(now);
    expect(driftWindow({ end: '2026-11-01T12:00:00Z', windowHours: 2 }, config, now)).toEqual({
      start: new Date('2026-11-01T10:00:00Z'),
      end: new Date('2026-11-01T12:00:00Z'),
    });
    expect(() => driftWindow({ windowHours: -1 }, config, now)).toThrow(
      'windowHours must be a number over 0, got -1',
    );
    expect(() => driftWindow({ end: 'yesterday' }, config, now)).toThrow(
      'end must be an ISO 8601 time, got "yesterday"',
    );
  });

  test("the days read are the window's, and the next one when the end is within an hour of midnight", () => {
    const day = (start: string, end: string) => windowDays({ start: new Date(start), end: new Date(end) });
    expect(day('2026-11-21T04:00:00Z', '2026-11-22T04:00:00Z')).toEqual(['2026-11-21', '2026-11-22']);
    expect(day('2026-11-22T01:00:00Z', '2026-11-22T03:00:00Z')).toEqual(['2026-11-22']);
    expect(day('2026-11-20T23:30:00Z', '2026-11-21T23:30:00Z')).toEqual([
      '2026-11-20',
      '2026-11-21',
      '2026-11-22',
    ]);
    expect(reportKey(config, '1.1.0', new Date('2026-11-22T04:00:00Z'))).toBe(
      'drift-reports/model=iris/version=1.1.0/date=2026-11-22/2026-11-22T04-00-00.000Z.json',
    );
  });
});

describe('reading capture objects', () => {
  const lines = async (chunks: readonly Buffer[]) => {
    const out: (string | null)[] = [];
    for await (const line of captureLines(Readable.from(chunks))) out.push(line);
    return out;
  };

  test('plain and gzipped bodies give the same lines, whatever the chunking (even inside a character)', async () => {
    const text = 'première\n{"a":1}\r\n\nlast without newline';
    const expected = ['première', '{"a":1}\r', '', 'last without newline'];
    const bytes = Buffer.from(text);
    expect(await lines([bytes])).toEqual(expected);
    // One byte per chunk: the gzip magic number and 'è' are both split.
    expect(await lines([...bytes].map((b) => Buffer.from([b])))).toEqual(expected);
    const gz = gzipSync(bytes);
    expect(await lines([gz])).toEqual(expected);
    expect(await lines([...gz].map((b) => Buffer.from([b])))).toEqual(expected);
    expect(await lines([])).toEqual([]);
    // Gzip files joined end to end (several members) read as their texts joined.
    expect(await lines([gzipSync('a\nb'), gzipSync('c\n')])).toEqual(['a', 'bc']);
  });

  test('a line over the limit is dropped as one null, and the lines after it still come', async () => {
    const long = 'x'.repeat(MAX_LINE_CHARS + 10);
    expect(await lines([Buffer.from(`a\n${long.slice(0, 1000)}`), Buffer.from(`${long}\nb\n`)])).toEqual([
      'a',
      null,
      'b',
    ]);
  });

  test('a corrupt gzip body fails the read', async () => {
    const gz = gzipSync(Buffer.from('{"a":1}\n'.repeat(1000)));
    await expect(lines([gz.subarray(0, gz.length - 20)])).rejects.toThrow('unexpected end of file');
  });
});

describe('metrics of a run', () => {
  const report = (
    version: string,
    psi: number,
    share: Record<string, number>,
    count: number,
  ): DriftReport => ({
    model: 'iris',
    version,
    rows: count,
    threshold: 0.2,
    features: [
      {
        name: 'f',
        source: 'input',
        tensor: 'x',
        index: 0,
        kind: 'numeric',
        count,
        missing: 0,
        psi,
        bins: { labels: [], expected: [], actual: [] },
      },
    ],
    predictions: [
      {
        name: 'label',
        source: 'output',
        tensor: 'label',
        index: 0,
        kind: 'categorical',
        count,
        missing: 0,
        psi: 0.01,
        bins: { labels: [], expected: [], actual: [] },
      },
    ],
    maxFeaturePsi: psi,
    predictionPsi: 0.01,
    drifted: psi >= 0.2 ? ['f'] : [],
    classShare: share,
  });

  test('per version, and per model the largest PSI and the class mix pooled over versions', () => {
    const at = new Date('2026-11-22T04:00:00Z');
    const data = driftMetrics(
      'iris',
      [
        { version: '1', rows: 300, report: report('1', 0.05, { a: 50, b: 50 }, 300) },
        { version: '2', rows: 100, report: report('2', 0.5, { a: 100, b: 0 }, 100) },
        {
          version: '3',
          rows: 10,
          report: { ...report('3', 9, {}, 10), skipped: '10 rows, fewer than the 100 needed' },
        },
      ],
      at,
    );
    const find = (name: string, dims: Record<string, string>): MetricDatum | undefined =>
      data.find(
        (d) =>
          d.MetricName === name &&
          JSON.stringify(d.Dimensions) ===
            JSON.stringify(Object.entries(dims).map(([Name, Value]) => ({ Name, Value }))),
      );
    expect(find('CapturedRows', { model: 'iris' })).toMatchObject({
      Value: 410,
      Unit: StandardUnit.Count,
      Timestamp: at,
    });
    expect(find('CapturedRows', { model: 'iris', version: '3' })?.Value).toBe(10);
    expect(find('FeaturePSI', { model: 'iris', version: '2', feature: 'f' })?.Value).toBe(0.5);
    expect(find('FeaturePSI', { model: 'iris', feature: 'f' })?.Value).toBe(0.5);
    expect(find('MaxFeaturePSI', { model: 'iris' })?.Value).toBe(0.5);
    expect(find('MaxFeaturePSI', { model: 'iris', version: '3' })).toBeUndefined();
    expect(find('PredictionPSI', { model: 'iris', version: '1' })?.Value).toBe(0.01);
    // (50% of 300 + 100% of 100) / 400 = 62.5%.
    expect(find('ClassShare', { model: 'iris', class: 'a' })).toMatchObject({
      Value: 62.5,
      Unit: StandardUnit.Percent,
    });
    expect(find('ClassShare', { model: 'iris', class: 'b' })?.Value).toBe(37.5);
    expect(data.every((d) => d.Timestamp === at)).toBe(true);
  });
});

describe('runs against moto', () => {
  let moto: MotoServer;
  let s3: S3Client;
  let cloudwatch: CloudWatchClient;
  const manifest = irisManifest();
  // moto's GetMetricData ignores the namespace when dimensions are given: each test has its own model name.
  let model = manifest.name;
  const hour = 3600 * 1000;
  // The window must end within CloudWatch's two weeks for metrics: end at the last whole hour.
  const end = new Date(Math.floor(Date.now() / hour) * hour);
  let bucketCount = 0;

  beforeAll(async () => {
    moto = await startMoto();
    s3 = motoS3Client(moto.endpoint);
    // moto cannot read a gzip-compressed JSON PutMetricData (the SDK compresses bodies over 10 KB); CloudWatch can.
    cloudwatch = new CloudWatchClient({
      ...motoClientConfig(moto.endpoint),
      disableRequestCompression: true,
    });
  });

  afterAll(async () => {
    s3?.destroy();
    cloudwatch?.destroy();
    await moto?.stop();
  });

  /** Fresh buckets, model name and namespace per test, so runs do not see each other's data. */
  async function setUp(env: Record<string, string> = {}): Promise<DriftJobConfig> {
    const n = ++bucketCount;
    model = `${manifest.name}-${n}`;
    const config = driftJobConfigFromEnv({
      CAPTURE_BUCKET: `captures-${n}`,
      MODEL_BUCKET: `models-${n}`,
      MODEL_NAME: model,
      METRIC_NAMESPACE: `DriftJobTest${n}`,
      ...env,
    });
    await s3.send(new CreateBucketCommand({ Bucket: config.captureBucket }));
    await s3.send(new CreateBucketCommand({ Bucket: config.modelBucket }));
    return config;
  }

  async function putManifest(config: DriftJobConfig, version: string, body: object | string): Promise<void> {
    await s3.send(
      new PutObjectCommand({
        Bucket: config.modelBucket,
        Key: `${model}/${version}/model.json`,
        Body: typeof body === 'string' ? body : JSON.stringify(body),
      }),
    );
  }

  async function putCaptures(
    config: DriftJobConfig,
    version: string,
    day: string,
    name: string,
    body: Buffer | string,
  ) {
    await s3.send(
      new PutObjectCommand({
        Bucket: config.captureBucket,
        Key: `${capturePrefix(model, version, day)}${name}`,
        Body: body,
      }),
    );
  }

  async function readReport(config: DriftJobConfig, key: string): Promise<StoredDriftReport> {
    const res = await s3.send(new GetObjectCommand({ Bucket: config.captureBucket, Key: key }));
    return JSON.parse(await res.Body!.transformToString()) as StoredDriftReport;
  }

  /** The Maximum of a metric over the last two days in one-minute periods, oldest first. */
  async function metric(config: DriftJobConfig, name: string, dims: Record<string, string>) {
    const res = await cloudwatch.send(
      new GetMetricDataCommand({
        StartTime: new Date(end.getTime() - 49 * hour),
        EndTime: new Date(end.getTime() + hour),
        ScanBy: 'TimestampAscending',
        MetricDataQueries: [
          {
            Id: 'm',
            MetricStat: {
              Metric: {
                Namespace: config.namespace,
                MetricName: name,
                Dimensions: Object.entries(dims).map(([Name, Value]) => ({ Name, Value })),
              },
              Period: 60,
              Stat: 'Maximum',
            },
          },
        ],
      }),
    );
    const r = res.MetricDataResults?.[0];
    return { values: r?.Values ?? [], timestamps: (r?.Timestamps ?? []).map((t) => t.getTime()) };
  }

  const records = (
    version: string,
    count: number,
    seed: number,
    from: Date,
    shift?: Record<string, number>,
  ) =>
    sampleRecords(manifest.baseline, count, {
      model,
      version,
      shift,
      random: seeded(seed),
      // Spread over the hour after `from`.
      time: (i) => new Date(from.getTime() + Math.floor((i * hour) / count)),
    });

  test('two windows: the unshifted one is under the threshold, the shifted one over it', async () => {
    const config = await setUp();
    const version = manifest.version;
    await putManifest(config, version, manifest);
    const petal = manifest.baseline.features.find((f) => f.name === 'petal_length');
    const std = petal && petal.kind !== 'categorical' ? petal.std : NaN;
    const first = new Date(end.getTime() - 24 * hour);
    const before = records(version, 400, 1, new Date(first.getTime() - 3 * hour));
    const after = records(version, 400, 2, new Date(end.getTime() - 3 * hour), { petal_length: 2 * std });
    const day = (d: Date) => d.toISOString().slice(0, 10);
    await putCaptures(config, version, day(new Date(first.getTime() - 3 * hour)), 'a.gz', gzipLines(before));
    await putCaptures(config, version, day(new Date(end.getTime() - 3 * hour)), 'b.gz', gzipLines(after));

    const one = await runDriftJob({ s3, cloudwatch, config, event: { end: first.toISOString() } });
    const two = await runDriftJob({ s3, cloudwatch, config, event: { end: end.toISOString() } });
    expect(one.versions).toHaveLength(1);
    expect(one.versions[0]).toMatchObject({ version, rows: 400, drifted: [], outsideWindow: 0, badLines: 0 });
    expect(one.versions[0]?.maxFeaturePsi).toBeLessThan(0.1);
    // The shifted data is in both windows' days but only the second window's time.
    expect(two.versions[0]).toMatchObject({ version, rows: 400, drifted: ['petal_length'] });
    expect(two.versions[0]?.maxFeaturePsi).toBeGreaterThanOrEqual(0.2);

    const max = await metric(config, 'MaxFeaturePSI', { model });
    expect(max.timestamps).toEqual([first.getTime(), end.getTime()]);
    expect(max.values[0]).toBeLessThan(0.2);
    expect(max.values[1]).toBeGreaterThanOrEqual(0.2);
    const petalPsi = await metric(config, 'FeaturePSI', { model, version, feature: 'petal_length' });
    expect(petalPsi.values[0]).toBeLessThan(0.2);
    expect(petalPsi.values[1]).toBeGreaterThanOrEqual(0.2);
    expect(petalPsi.values[1]).toBeCloseTo(two.versions[0]?.maxFeaturePsi ?? NaN, 6);
    expect((await metric(config, 'CapturedRows', { model })).values).toEqual([400, 400]);

    const report = await readReport(config, two.versions[0]?.report ?? '');
    expect(report.window).toEqual({
      start: new Date(end.getTime() - 24 * hour).toISOString(),
      end: end.toISOString(),
    });
    expect(report.drifted).toEqual(['petal_length']);
    expect(report.features.map((f) => f.name)).toEqual(manifest.baseline.features.map((f) => f.name));
    expect(report.input).toEqual({ objects: 2, badLines: 0, outsideWindow: 400, badObjects: 0 });
  });

  test('bad lines and corrupt objects are counted and skipped; records outside the window are ignored', async () => {
    const config = await setUp({ MIN_ROWS: '10' });
    const version = manifest.version;
    await putManifest(config, version, manifest);
    const from = new Date(end.getTime() - 5 * hour);
    const good = records(version, 150, 3, from);
    const old = records(version, 30, 4, new Date(end.getTime() - 30 * hour));
    const bad = [
      'not json',
      '{"mdk_capture": 1}',
      JSON.stringify({ ...good[0], model: 'other' }),
      JSON.stringify({ ...good[0], version: 'other' }),
      JSON.stringify({ ...good[0], time: 'noon' }),
      '["an array"]',
    ];
    const day = from.toISOString().slice(0, 10);
    await putCaptures(
      config,
      version,
      day,
      'mixed.gz',
      gzipLines([...good.slice(0, 100), ...bad, ...old.slice(0, 10)]),
    );
    // Not every object is gzipped (e.g. one written by hand): plain JSONL reads the same.
    await putCaptures(
      config,
      version,
      day,
      'plain.jsonl',
      good
        .slice(100)
        .map((r) => JSON.stringify(r))
        .join('\n'),
    );
    // Records from before the window in an object of a day the window covers: read, and left out.
    await putCaptures(config, version, day, 'old.gz', gzipLines(old.slice(10)));
    const truncated = gzipLines(records(version, 500, 5, from));
    await putCaptures(config, version, day, 'truncated.gz', truncated.subarray(0, truncated.length - 100));

    const summary = await runDriftJob({ s3, cloudwatch, config, event: { end: end.toISOString() } });
    const v = summary.versions[0];
    // The truncated object's lines up to the break count too: at least its first few hundred rows.
    expect(v).toMatchObject({ version, objects: 4, badLines: 6, outsideWindow: 30, badObjects: 1 });
    expect(v?.rows).toBeGreaterThan(150 + 300);
    expect(v?.rows).toBeLessThan(150 + 500);
    expect(v?.drifted).toEqual([]);
    expect((await metric(config, 'CapturedRows', { model, version })).values).toEqual([v?.rows]);
  });

  test('a version without a manifest, one without a baseline and one with too few rows: rows only, and why', async () => {
    const config = await setUp();
    const from = new Date(end.getTime() - 2 * hour);
    const day = from.toISOString().slice(0, 10);
    const noBaseline = Object.fromEntries(Object.entries(manifest).filter(([k]) => k !== 'baseline'));
    await putManifest(config, '2.0.0', { ...noBaseline, version: '2.0.0' });
    await putManifest(config, '3.0.0', { ...manifest, version: '3.0.0' });
    await putManifest(config, '4.0.0', 'not json {');
    for (const [version, count] of [
      ['1.9.9', 120],
      ['2.0.0', 110],
      ['3.0.0', 42],
      ['4.0.0', 130],
    ] as const) {
      await putCaptures(config, version, day, 'x.gz', gzipLines(records(version, count, 6, from)));
    }
    // A version whose captures are all older than the window gets no report at all.
    await putCaptures(
      config,
      '0.1.0',
      '2020-01-01',
      'x.gz',
      gzipLines(records('0.1.0', 120, 7, new Date('2020-01-01'))),
    );

    const summary = await runDriftJob({ s3, cloudwatch, config, event: { end: end.toISOString() } });
    const by = Object.fromEntries(summary.versions.map((v) => [v.version, v]));
    expect(Object.keys(by).sort()).toEqual(['1.9.9', '2.0.0', '3.0.0', '4.0.0']);
    expect(by['1.9.9']).toMatchObject({
      rows: 120,
      skipped: `no manifest at s3://${config.modelBucket}/${model}/1.9.9/model.json`,
    });
    expect(by['2.0.0']).toMatchObject({
      rows: 110,
      skipped: `s3://${config.modelBucket}/${model}/2.0.0/model.json has no baseline`,
    });
    expect(by['3.0.0']).toMatchObject({
      rows: 42,
      skipped: '42 rows, fewer than the 100 needed',
      drifted: [],
    });
    expect(by['4.0.0']?.skipped).toMatch(/model\.json is not valid JSON/);
    expect(summary.rows).toBe(120 + 110 + 42 + 130);

    for (const version of Object.keys(by)) {
      expect((await metric(config, 'CapturedRows', { model, version })).values).toEqual([by[version]?.rows]);
      expect((await metric(config, 'MaxFeaturePSI', { model, version })).values).toEqual([]);
      const report = await readReport(config, by[version]?.report ?? '');
      expect(report).toMatchObject({
        model,
        version,
        rows: by[version]?.rows,
        skipped: by[version]?.skipped,
      });
    }
    expect((await metric(config, 'CapturedRows', { model })).values).toEqual([402]);
    expect((await metric(config, 'MaxFeaturePSI', { model })).values).toEqual([]);
  });

  // moto does not enforce IAM, so it never answers AccessDenied, which S3 gives a role without s3:ListBucket
  // for a missing object. Only that answer is scripted: every other call goes on to moto.
  test("a manifest that reads as AccessDenied is that version's problem, not the run's", async () => {
    const config = await setUp({ MIN_ROWS: '1' });
    const from = new Date(end.getTime() - hour);
    await putManifest(config, '1.0.0', manifest);
    for (const version of ['1.0.0', '2.0.0']) {
      await putCaptures(
        config,
        version,
        from.toISOString().slice(0, 10),
        'x.gz',
        gzipLines(records(version, 20, 8, from)),
      );
    }
    const denied = `${model}/2.0.0/model.json`;
    const scripted = new S3Client({ region: 'us-east-1' });
    const mock = mockClient(scripted);
    mock
      .on(ListObjectsV2Command)
      .callsFake((input: ListObjectsV2CommandInput) => s3.send(new ListObjectsV2Command(input)));
    mock
      .on(PutObjectCommand)
      .callsFake((input: PutObjectCommandInput) => s3.send(new PutObjectCommand(input)));
    mock.on(GetObjectCommand).callsFake((input: GetObjectCommandInput) =>
      input.Key === denied
        ? Promise.reject(
            new S3ServiceException({
              name: 'AccessDenied',
              $fault: 'client',
              $metadata: { httpStatusCode: 403 },
              message: 'Access Denied',
            }),
          )
        : s3.send(new GetObjectCommand(input)),
    );
    try {
      const summary = await runDriftJob({
        s3: scripted,
        cloudwatch,
        config,
        event: { end: end.toISOString() },
      });
      expect(summary.versions.map((v) => [v.version, v.rows, v.skipped])).toEqual([
        ['1.0.0', 20, undefined],
        [
          '2.0.0',
          20,
          `cannot read s3://${config.modelBucket}/${denied}: AccessDenied (without s3:ListBucket a missing object reads as AccessDenied)`,
        ],
      ]);
      // Any other failure of the manifest read fails the run, so the scheduled invocation is retried.
      mock.on(GetObjectCommand, { Key: denied }).rejects(new Error('socket hang up'));
      await expect(
        runDriftJob({ s3: scripted, cloudwatch, config, event: { end: end.toISOString() } }),
      ).rejects.toThrow('socket hang up');
    } finally {
      mock.restore();
    }
  });

  test('no captures at all: CapturedRows 0 for the model, no reports; an old window gets no metrics', async () => {
    const config = await setUp();
    const summary = await runDriftJob({ s3, cloudwatch, config, event: { end: end.toISOString() } });
    expect(summary).toMatchObject({ model, rows: 0, versions: [], metrics: 1 });
    expect((await metric(config, 'CapturedRows', { model })).values).toEqual([0]);

    const old = await runDriftJob({ s3, cloudwatch, config, event: { end: '2026-01-01T00:00:00Z' } });
    expect(old.metrics).toBe(0);
    expect(old.metricsSkipped).toMatch(/the window ends at 2026-01-01T00:00:00.000Z, outside the two weeks/);
  });

  test('more than 1000 metrics go in several PutMetricData calls', async () => {
    const config = await setUp({ MIN_ROWS: '1' });
    // 1100 numeric features on one input: 2200 FeaturePSI data points and a few more.
    const feature = manifest.baseline.features[0]!;
    const features = Array.from({ length: 1100 }, (_, i) => ({ ...feature, index: i, name: `f${i}` }));
    await putManifest(config, '1.0.0', { ...manifest, version: '1.0.0', baseline: { features } });
    const row = Array.from({ length: 1100 }, (_, i) => 4.3 + (i % 30) / 10);
    const record = {
      mdk_capture: CAPTURE_FORMAT,
      time: new Date(end.getTime() - hour).toISOString(),
      model,
      version: '1.0.0',
      row: 0,
      rows: 1,
      latency_ms: 1,
      inputs: { input: row },
      outputs: {},
    };
    await putCaptures(config, '1.0.0', record.time.slice(0, 10), 'x.gz', gzipLines([record, record]));
    // Watch the real client's calls (CloudWatch refuses over 1000 metrics in one; moto does not check).
    const sizes: number[] = [];
    const watched = new CloudWatchClient({
      ...motoClientConfig(moto.endpoint),
      disableRequestCompression: true,
    });
    watched.middlewareStack.add(
      (next) => (args) => {
        sizes.push((args.input as { MetricData?: unknown[] }).MetricData?.length ?? 0);
        return next(args);
      },
      { step: 'initialize' },
    );
    const summary = await runDriftJob({ s3, cloudwatch: watched, config, event: { end: end.toISOString() } });
    watched.destroy();
    // CapturedRows per version, 1100 FeaturePSI per version and per model, MaxFeaturePSI twice, CapturedRows.
    expect(summary.metrics).toBe(1 + 2200 + 1 + 1 + 1);
    expect(sizes).toEqual([1000, 1000, 204]);
    expect((await metric(config, 'FeaturePSI', { model, feature: 'f1099' })).values).toHaveLength(1);
    expect(
      (await metric(config, 'FeaturePSI', { model, version: '1.0.0', feature: 'f0' })).values,
    ).toHaveLength(1);
  });
});
