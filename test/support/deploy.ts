/**
 * Deploying a synthesized stack into moto the way `cdk deploy --method=direct` would, without the CLI: its
 * file and zip assets uploaded to the bootstrap bucket keys the template expects, then CloudFormation
 * CreateStack/UpdateStack. For tests of one construct's stack; the ready app is deployed with the real CLI
 * (test/bin/app.deploy.test.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as cdk from 'aws-cdk-lib';
import {
  CreateStackCommand,
  DescribeStacksCommand,
  UpdateStackCommand,
  type CloudFormationClient,
  type Stack,
} from '@aws-sdk/client-cloudformation';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { TEST_ENV } from './cdk';
import { zipFolder } from './zip';

interface AssetManifest {
  files: Record<
    string,
    {
      source: { path: string; packaging?: string };
      destinations: Record<string, { bucketName: string; objectKey: string }>;
    }
  >;
}

/** Synthesizes the stack's app, uploads its assets into moto, and returns the template body. */
export async function templateForMoto(stack: cdk.Stack, s3: S3Client): Promise<string> {
  const root = stack.node.root;
  if (!cdk.App.isApp(root)) throw new Error(`${stack.node.path} is not in an App`);
  const assembly = root.synth();
  const artifact = assembly.getStackByName(stack.stackName);
  const manifest = JSON.parse(
    fs.readFileSync(path.join(assembly.directory, `${artifact.stackName}.assets.json`), 'utf8'),
  ) as AssetManifest;
  for (const file of Object.values(manifest.files)) {
    const source = path.join(assembly.directory, file.source.path);
    if (file.source.path.endsWith('.template.json')) continue;
    const body = file.source.packaging === 'zip' ? zipFolder(source) : fs.readFileSync(source);
    for (const dest of Object.values(file.destinations)) {
      const bucket = dest.bucketName
        .replace('${AWS::AccountId}', TEST_ENV.account)
        .replace('${AWS::Region}', TEST_ENV.region);
      await s3.send(new CreateBucketCommand({ Bucket: bucket })).catch(() => undefined);
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: dest.objectKey, Body: body }));
    }
  }
  return JSON.stringify(artifact.template);
}

/** Polls until the stack is no longer in progress. */
export async function settled(cfn: CloudFormationClient, name: string, limitMs = 120_000): Promise<Stack> {
  const until = Date.now() + limitMs;
  for (;;) {
    const stack = (await cfn.send(new DescribeStacksCommand({ StackName: name }))).Stacks?.[0];
    if (!stack) throw new Error(`no stack ${name}`);
    if (!stack.StackStatus?.endsWith('_IN_PROGRESS')) return stack;
    if (Date.now() > until) throw new Error(`${name} still ${stack.StackStatus} after ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Creates the stack, or updates it when it exists, and waits for the result. */
export async function deployToMoto(
  cfn: CloudFormationClient,
  name: string,
  templateBody: string,
  update = false,
): Promise<Stack> {
  const input = { StackName: name, TemplateBody: templateBody, Capabilities: ['CAPABILITY_IAM' as const] };
  await cfn.send(update ? new UpdateStackCommand(input) : new CreateStackCommand(input));
  return settled(cfn, name);
}

export const outputsOf = (stack: Stack): Record<string, string | undefined> =>
  Object.fromEntries((stack.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue]));
