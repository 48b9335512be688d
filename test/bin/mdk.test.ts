import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { addMulModel, classifierModel, removeDir, writeModel, type WrittenModel } from '../fixtures/models';
import { runMdk as mdk, serveMdk } from '../support/mdk-cli';

const ROOT = path.join(__dirname, '..', '..');
const IRIS = path.join(ROOT, 'models', 'iris');

const readJsonl = (file: string) =>
  fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('mdk', () => {
  let addMul: WrittenModel;
  let classifier: WrittenModel;

  beforeAll(() => {
    addMul = writeModel(addMulModel(), { folderName: 'addmul' });
    classifier = writeModel(classifierModel(), { fileName: 'clf.onnx' });
  });

  afterAll(() => {
    removeDir(addMul.root);
    removeDir(classifier.root);
  });

  describe('usage', () => {
    it.each([
      [[] as string[]],
      [['--help']],
      [['serve', '--help']],
      [['inspect', '--help']],
      [['predict', '--help']],
    ])('prints help for %j', async (args) => {
      const run = await mdk(args);
      expect(run.stdout).toMatch(/Usage:\n? +mdk/);
      expect(run.code).toBe(args.length === 0 ? 2 : 0);
    });

    it('rejects unknown commands and flags with exit 2', async () => {
      const cmd = await mdk(['deploy']);
      expect(cmd.code).toBe(2);
      expect(cmd.stderr).toMatch(/unknown command 'deploy'; use one of: serve, inspect, predict/);
      const flag = await mdk(['serve', '--model', IRIS, '--prot', '9000']);
      expect(flag.code).toBe(2);
      expect(flag.stderr).toMatch(/Unknown option '--prot'/);
      const port = await mdk(['serve', '--model', IRIS, '--port', 'eighty']);
      expect(port.code).toBe(2);
      expect(port.stderr).toMatch(/--port must be a whole number from 0 to 65535, got "eighty"/);
      const missing = await mdk(['predict', '--model', IRIS, '--input', 'x.jsonl']);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/--output is required/);
      const wait = await mdk(['serve', '--model', IRIS, '--batch-max-latency-ms', '5']);
      expect(wait.code).toBe(2);
      expect(wait.stderr).toMatch(/--batch-max-latency-ms needs batching on: add --batch-max-size 2 or more/);
      const queue = await mdk(['serve', '--model', IRIS, '--max-queue', '0']);
      expect(queue.code).toBe(2);
      expect(queue.stderr).toMatch(/--max-queue must be a whole number from 1/);
    });
  });

  describe('inspect', () => {
    it('prints inputs, outputs and the outputs it cannot return', async () => {
      const run = await mdk(['inspect', classifier.modelPath]);
      expect(run.code).toBe(0);
      const report = JSON.parse(run.stdout) as Record<string, unknown>;
      expect(report).toMatchObject({
        name: 'clf',
        sha256: classifier.sha256,
        inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }],
        outputs: [{ name: 'label', datatype: 'INT64', shape: [-1] }],
        unsupported_outputs: [{ name: 'probabilities' }],
      });
    });

    it('says clearly when the path is wrong', async () => {
      const run = await mdk(['inspect', '/no/such/model.onnx']);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/^mdk: model path \/no\/such\/model.onnx does not exist/);
    });
  });

  describe('predict', () => {
    it('writes a prediction per good row and an error per bad row, by line number', async () => {
      const input = path.join(addMul.root, 'rows.jsonl');
      const output = path.join(addMul.root, 'out.jsonl');
      const rows = [
        { a: [1, 2, 3], b: [4, 5, 6] },
        { a: [0.5, 0.5, 0.5], b: [2, 2, 2] },
        '{"a": [1, 2, 3], "b": ',
        { a: [1, 2], b: [1, 2] },
        { a: [1, 2, 3], c: [1, 2, 3] },
        { a: ['x', 2, 3], b: [1, 2, 3] },
        { a: [-1, -2, -3], b: [1, 1, 1] },
      ];
      fs.writeFileSync(
        input,
        rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n',
      );
      const run = await mdk([
        'predict',
        '--model',
        addMul.dir,
        '--input',
        input,
        '--output',
        output,
        '--batch-size',
        '4',
      ]);
      expect(run.code).toBe(3);
      expect(run.stderr).toMatch(/predicted 3 rows .* 4 rows failed, see .*out\.jsonl\.errors\.jsonl/);

      const predictions = readJsonl(output);
      expect(predictions.map((p) => p.line)).toEqual([1, 2, 7]);
      const session = await ort.InferenceSession.create(addMul.modelPath);
      for (const p of predictions) {
        const row = rows[(p.line as number) - 1] as { a: number[]; b: number[] };
        const direct = await session.run({
          a: new ort.Tensor('float32', Float32Array.from(row.a), [1, 3]),
          b: new ort.Tensor('float32', Float32Array.from(row.b), [1, 3]),
        });
        expect(p.outputs).toEqual({
          sum: Array.from(direct.sum?.data as Float32Array),
          product: Array.from(direct.product?.data as Float32Array),
        });
      }
      await session.release();

      const errors = readJsonl(`${output}.errors.jsonl`);
      expect(errors.map((e) => e.line)).toEqual([3, 4, 5, 6]);
      expect(errors[0]?.error).toMatch(/not valid JSON/);
      expect(errors[1]?.error).toBe("input 'a': expected 3 values, got 2 (each row is shaped [3])");
      expect(errors[2]?.error).toMatch(/input 'b'|unknown input 'c'/);
      expect(errors[3]?.error).toBe('input \'a\'[0]: FP32 values must be numbers, got "x"');
    });

    it('streams a large CSV with a header, in batches, from stdin', async () => {
      const output = path.join(addMul.root, 'iris-out.jsonl');
      const n = 5000;
      const lines = ['sepal_length,sepal_width,petal_length,petal_width'];
      for (let i = 0; i < n; i++)
        lines.push(`${4 + (i % 40) / 10},3.0,${1 + (i % 60) / 10},${(i % 25) / 10}`);
      const run = await mdk(
        ['predict', '--model', IRIS, '--input', '-', '--format', 'csv', '--output', output],
        lines.join('\n'),
      );
      expect(run.stderr).toMatch(/the first line is a header; columns map to inputs by feature name/);
      expect(run.code).toBe(0);
      const predictions = readJsonl(output);
      expect(predictions).toHaveLength(n);
      expect(predictions[0]?.line).toBe(2);
      expect(predictions[n - 1]?.line).toBe(n + 1);
      for (const p of predictions) expect([0, 1, 2]).toContain((p.outputs as { label: number }).label);
      expect(fs.existsSync(`${output}.errors.jsonl`)).toBe(false);
    });

    it('fails cleanly when the input file does not exist', async () => {
      const run = await mdk([
        'predict',
        '--model',
        IRIS,
        '--input',
        '/no/rows.jsonl',
        '--output',
        '/tmp/x.jsonl',
      ]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/input file \/no\/rows.jsonl does not exist/);
    });
  });

  describe('serve', () => {
    it('serves a model with batching on, matches a direct run, and exits 0 on SIGTERM', async () => {
      const server = await serveMdk(
        [
          '--model',
          addMul.dir,
          '--port',
          '0',
          '--quiet',
          '--batch-max-size',
          '8',
          '--batch-max-latency-ms',
          '1',
        ],
        'addmul',
      );
      const url = server.url;
      expect(server.stdout()).toMatch(/infer: +curl -s .*\/v2\/models\/addmul\/infer/);

      const a = [1, 2, 3];
      const b = [0.5, -1, 2];
      const res = await fetch(`${url}/v2/models/addmul/infer`, {
        method: 'POST',
        body: JSON.stringify({
          inputs: [
            { name: 'a', shape: [1, 3], datatype: 'FP32', data: a },
            { name: 'b', shape: [1, 3], datatype: 'FP32', data: b },
          ],
        }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { outputs: { name: string; data: number[] }[] };
      const session = await ort.InferenceSession.create(addMul.modelPath);
      const direct = await session.run({
        a: new ort.Tensor('float32', Float32Array.from(a), [1, 3]),
        b: new ort.Tensor('float32', Float32Array.from(b), [1, 3]),
      });
      await session.release();
      expect(body.outputs.find((o) => o.name === 'product')?.data).toEqual(
        Array.from(direct.product?.data as Float32Array),
      );

      expect(await server.stop()).toBe(0);
      expect(server.stderr()).toMatch(/SIGTERM: draining in-flight requests/);
    });

    it('captures served rows to a file as the AWS endpoint does, redacted as asked', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-capture-'));
      const file = path.join(dir, 'captured.jsonl');
      const server = await serveMdk(
        ['--model', IRIS, '--port', '0', '--quiet', '--capture', file, '--capture-redact', 'petal_length'],
        'iris',
      );
      const url = server.url;
      expect(server.stderr()).toContain(`capturing 100% of requests to ${file}`);
      for (const rows of [
        [[6.4, 3.2, 4.5, 1.5]],
        [
          [4.7, 3.2, 1.3, 0.2],
          [7.7, 2.6, 6.9, 2.3],
        ],
      ]) {
        const res = await fetch(`${url}/v2/models/iris/infer`, {
          method: 'POST',
          body: JSON.stringify({
            inputs: [{ name: 'input', shape: [rows.length, 4], datatype: 'FP32', data: rows.flat() }],
          }),
        });
        expect(res.status).toBe(200);
      }
      expect(await server.stop()).toBe(0);
      expect(server.stderr()).toContain(`captured 3 rows to ${file}`);
      const records = readJsonl(file);
      expect(records.map((r) => r.inputs)).toEqual([
        { input: [6.4, 3.2, null, 1.5] },
        { input: [4.7, 3.2, null, 0.2] },
        { input: [7.7, 2.6, null, 2.3] },
      ]);
      expect(
        records.every((r) => r.mdk_capture === 1 && r.model === 'iris' && typeof r.version === 'string'),
      ).toBe(true);
      expect(records.map((r) => r.redacted)).toEqual([['petal_length'], ['petal_length'], ['petal_length']]);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('refuses capture options that would capture the wrong thing, before serving', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-capture-'));
      const file = path.join(dir, 'c.jsonl');
      const typo = await mdk([
        'serve',
        '--model',
        IRIS,
        '--port',
        '0',
        '--capture',
        file,
        '--capture-hash',
        'petal_lenght',
      ]);
      expect(typo.code).toBe(2);
      expect(typo.stderr).toContain("'petal_lenght' names no input or baseline feature");
      const alone = await mdk(['serve', '--model', IRIS, '--capture-percent', '5']);
      expect(alone.code).toBe(2);
      expect(alone.stderr).toContain(
        '--capture-percent, --capture-redact and --capture-hash need --capture FILE',
      );
      const pct = await mdk(['serve', '--model', IRIS, '--capture', file, '--capture-percent', '150']);
      expect(pct.code).toBe(2);
      expect(pct.stderr).toContain('--capture-percent must be a number from 0 to 100, got "150"');
      const nowhere = await mdk([
        'serve',
        '--model',
        IRIS,
        '--capture',
        path.join(dir, 'no', 'such', 'c.jsonl'),
      ]);
      expect(nowhere.code).toBe(2);
      expect(nowhere.stderr).toMatch(/--capture .*c\.jsonl: ENOENT/);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('exits 1 with the reason when the model fails its sha256 check', async () => {
      const bad = writeModel(addMulModel(), { manifest: { sha256: 'f'.repeat(64) } });
      const run = await mdk(['serve', '--model', bad.dir, '--port', '0']);
      removeDir(bad.root);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/manifest's sha256 is f{64}.*refusing to serve/);
    });
  });
});
