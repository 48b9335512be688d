import { S3Client } from '@aws-sdk/client-s3';
import { SageMakerClient } from '@aws-sdk/client-sagemaker';
import {
  checkLocation,
  listModels,
  registerModel,
  RegistryError,
  resolveLatestApproved,
  setApproval,
  type ApprovalStatus,
  type RegisteredModel,
} from '../../lambda/core/registry';
import { CliError, parse, required, str, UsageError, type Parsed } from './args';

const HELP = `Usage: mdk registry <command> [options]

Model versions in the SageMaker Model Registry. A registered version's files are in the model bucket at
s3://BUCKET/<name>/<version>/ (immutable, as a deployment publishes them), and its package in the group
records where they are; a deployment that uses ModelSource.fromRegistry(GROUP) serves the newest
Approved package.

Commands:
  register --group G --model DIR --bucket B [options]
      Upload the model folder (model.onnx, model.json, and metrics.json from its metrics) and create a
      model package for it, PendingManualApproval unless --approve. Running it again changes nothing.
        --approve             register it Approved
        --create-group        create the group when it does not exist (default: an unknown group is an error)
        --image URI           an ECR image that serves the model on SageMaker (this toolkit's container):
                              the package then gets an InferenceSpecification SageMaker can deploy
        --description TEXT    the package's description (default: the manifest's)
  approve --group G --version N [--description TEXT]
  reject  --group G --version N [--description TEXT]
      Set a package's approval status. N is the package version (1, 2, ...) or its ARN.
  list --group G [--json]
      Every package of the group, newest first: version, status, model name and version, created.
  resolve --group G [--bucket B] [--json]
      The package a deployment would serve now: the newest Approved one. With --bucket, also check
      that it points into that bucket, as the deployment does.

Options for every command:
  --json          print JSON instead of text
  -h, --help      this help

AWS: the region, credentials and endpoint come from the usual environment (AWS_REGION, AWS_PROFILE,
AWS_ENDPOINT_URL, ...). Progress goes to stderr, results to stdout.

Exit status: 0 done, 1 the registry or S3 refused or failed (the message says why), 2 usage.
`;

const COMMON = { group: { type: 'string' }, json: { type: 'boolean' } } as const;

interface Clients {
  readonly sm: SageMakerClient;
  readonly s3: S3Client;
}

/** From the environment, like the AWS CLI. An endpoint URL (moto, LocalStack) needs path-style S3. */
function clients(): Clients {
  const forcePathStyle = Boolean(process.env.AWS_ENDPOINT_URL || process.env.AWS_ENDPOINT_URL_S3);
  return { sm: new SageMakerClient({}), s3: new S3Client({ forcePathStyle }) };
}

const log = (line: string) => process.stderr.write(`mdk: ${line}\n`);
const out = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

function packageRef(p: Parsed): number | string {
  const raw = required(p, 'version');
  if (/^[1-9]\d{0,9}$/.test(raw)) return Number(raw);
  if (raw.startsWith('arn:')) return raw;
  throw new UsageError(
    `--version must be a package version number (1, 2, ...) or a package ARN, got ${JSON.stringify(raw)}`,
  );
}

function asJson(m: RegisteredModel): Record<string, unknown> {
  return {
    group: m.group,
    packageVersion: m.packageVersion,
    packageArn: m.packageArn,
    status: m.status,
    created: m.created?.toISOString(),
    description: m.description,
    approvalDescription: m.approvalDescription,
    modelName: m.model?.modelName,
    version: m.model?.version,
    sha256: m.model?.modelSha256,
    manifestSha256: m.model?.manifestSha256,
    s3Uri: m.model?.s3Uri,
  };
}

function summary(m: RegisteredModel): string {
  const model = m.model ? `${m.model.modelName} ${m.model.version}` : '(not registered by mdk)';
  return `${m.group} package ${m.packageVersion}: ${model}, ${m.status}\n  ${m.packageArn}${m.model ? `\n  ${m.model.s3Uri}` : ''}`;
}

function table(models: readonly RegisteredModel[]): string {
  const rows = [
    ['VERSION', 'STATUS', 'MODEL', 'MODEL VERSION', 'CREATED'],
    ...models.map((m) => [
      String(m.packageVersion),
      m.status,
      m.model?.modelName ?? '-',
      m.model?.version ?? '-',
      m.created?.toISOString() ?? '-',
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

async function register(argv: string[]): Promise<number> {
  const p = parse(argv, {
    ...COMMON,
    model: { type: 'string' },
    bucket: { type: 'string' },
    approve: { type: 'boolean' },
    'create-group': { type: 'boolean' },
    image: { type: 'string' },
    description: { type: 'string' },
  });
  if (p.help) return help();
  const group = required(p, 'group');
  const modelDir = required(p, 'model');
  const bucket = required(p, 'bucket');
  const image = str(p, 'image');
  if (image !== undefined && !/^\S+\/\S+/.test(image)) {
    throw new UsageError(
      `--image must be an image URI like ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME:TAG, got ${JSON.stringify(image)}`,
    );
  }
  const { sm, s3 } = clients();
  const result = await registerModel(sm, s3, {
    group,
    modelDir,
    bucket,
    status: p.values.approve === true ? 'Approved' : 'PendingManualApproval',
    createGroup: p.values['create-group'] === true,
    image,
    description: str(p, 'description'),
    log,
  });
  if (p.values.json === true) {
    out(
      JSON.stringify(
        { ...asJson(result.registered), created: result.created, uploads: result.uploads },
        null,
        2,
      ),
    );
  } else {
    out(`${result.created ? 'registered' : 'already registered'}: ${summary(result.registered)}`);
  }
  return 0;
}

async function approval(argv: string[], status: ApprovalStatus): Promise<number> {
  const p = parse(argv, { ...COMMON, version: { type: 'string' }, description: { type: 'string' } });
  if (p.help) return help();
  const group = required(p, 'group');
  const ref = packageRef(p);
  const updated = await setApproval(clients().sm, group, ref, status, str(p, 'description'));
  out(p.values.json === true ? JSON.stringify(asJson(updated), null, 2) : summary(updated));
  return 0;
}

async function list(argv: string[]): Promise<number> {
  const p = parse(argv, COMMON);
  if (p.help) return help();
  const models = await listModels(clients().sm, required(p, 'group'));
  if (p.values.json === true) out(JSON.stringify(models.map(asJson), null, 2));
  else out(models.length === 0 ? 'no packages' : table(models));
  return 0;
}

async function resolve(argv: string[]): Promise<number> {
  const p = parse(argv, { ...COMMON, bucket: { type: 'string' } });
  if (p.help) return help();
  const found = await resolveLatestApproved(clients().sm, required(p, 'group'));
  const bucket = str(p, 'bucket');
  if (bucket !== undefined) checkLocation(found, bucket);
  out(p.values.json === true ? JSON.stringify(asJson(found), null, 2) : summary(found));
  return 0;
}

function help(): number {
  process.stdout.write(HELP);
  return 0;
}

/** An AWS failure as one line: the service's error name and message, and a hint where one helps. */
function cliError(err: unknown): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof RegistryError) return new CliError(err.message);
  if (err instanceof Error) {
    const hint = /region is missing/i.test(err.message)
      ? ' (set AWS_REGION)'
      : /credential/i.test(err.message)
        ? ' (set AWS_PROFILE or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)'
        : '';
    const name = err.name && err.name !== 'Error' ? `${err.name}: ` : '';
    return new CliError(`${name}${err.message}${hint}`);
  }
  return new CliError(String(err));
}

export async function registryCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(HELP);
    return sub === undefined ? 2 : 0;
  }
  const commands: Record<string, (args: string[]) => Promise<number>> = {
    register: (a) => register(a),
    approve: (a) => approval(a, 'Approved'),
    reject: (a) => approval(a, 'Rejected'),
    list: (a) => list(a),
    resolve: (a) => resolve(a),
  };
  const command = commands[sub];
  if (!command) {
    throw new UsageError(
      `unknown registry command '${sub}'; use one of: ${Object.keys(commands).join(', ')}`,
    );
  }
  try {
    return await command(rest);
  } catch (err) {
    throw cliError(err);
  }
}
