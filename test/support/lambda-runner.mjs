// Runs one Lambda invocation of Node.js code in this process, the way Lambda's nodejs runtime would, for moto
// without Docker (see moto_lambda.py, which starts it once per invocation).
//
//   node lambda-runner.mjs <task dir> <handler> [result file]   (the event is read from stdin)
//
// <handler> is Lambda's `file.export`: <task dir>/file.mjs, .js or .cjs, export `export`. The handler gets the
// event and a context (awsRequestId, functionName, getRemainingTimeInMillis, ...), async or callback style.
// The outcome is written as JSON to the result file ({"ok":true,"result":...} or {"ok":false,"error":{...}},
// the error in Lambda's errorType/errorMessage/trace shape), or printed to stdout when no file is given.
// Everything the code logs goes to stdout/stderr, which are the invocation's logs.
//
// The function's timeout (AWS_LAMBDA_FUNCTION_TIMEOUT seconds) is enforced from the moment the handler is
// called: when it runs out, the invocation fails with Lambda's "Task timed out" error.
//
// Code written for AWS may only speak https (CDK's custom resource framework sends its response with
// https.request and no port). In moto the ResponseURL is plain http on MOTO_PORT, so https requests to the
// moto host on the default port are sent there over http. Our own handlers pick http or https by the URL.
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';
import { pathToFileURL, urlToHttpOptions } from 'node:url';

const [taskDir, handlerSpec, resultFile] = process.argv.slice(2);
if (!taskDir || !handlerSpec) {
  process.stderr.write('usage: node lambda-runner.mjs <task dir> <file.export> [result file] < event.json\n');
  process.exit(2);
}

let finished = false;

/** Writes the outcome once, then ends the process: Lambda does not wait for an empty event loop either. */
function finish(outcome, exitCode = 0) {
  if (finished) return;
  finished = true;
  const json = JSON.stringify(outcome);
  if (resultFile) writeFileSync(resultFile, json);
  else process.stdout.write(json + '\n');
  process.exit(exitCode);
}

function errorOf(err, fallbackType) {
  if (err instanceof Error) {
    return {
      errorType: err.name && err.name !== 'Error' ? err.name : fallbackType,
      errorMessage: err.message,
      trace: (err.stack ?? '').split('\n'),
    };
  }
  return { errorType: fallbackType, errorMessage: String(err), trace: [] };
}

function fail(err, fallbackType, exitCode = 0) {
  const error = errorOf(err, fallbackType);
  process.stderr.write(`ERROR\tInvoke Error\t${JSON.stringify(error)}\n`);
  finish({ ok: false, error }, exitCode);
}

process.on('uncaughtException', (err) => fail(err, 'Runtime.UncaughtException', 1));
process.on('unhandledRejection', (err) => fail(err, 'Runtime.UnhandledPromiseRejection', 1));

redirectHttpsToMoto();

const event = JSON.parse(readFileSync(0, 'utf8') || '{}');
const dot = handlerSpec.lastIndexOf('.');
const modulePath = handlerSpec.slice(0, dot);
const exportName = handlerSpec.slice(dot + 1);
const file = ['.mjs', '.js', '.cjs']
  .map((ext) => path.join(taskDir, modulePath + ext))
  .find((candidate) => existsSync(candidate));

let handler;
try {
  if (dot <= 0 || !file) {
    throw Object.assign(
      new Error(`Cannot find module '${modulePath}' in ${taskDir} (handler ${handlerSpec})`),
      {
        name: 'Runtime.ImportModuleError',
      },
    );
  }
  const mod = await import(pathToFileURL(file).href);
  handler = mod[exportName] ?? mod.default?.[exportName];
  if (typeof handler !== 'function') {
    throw Object.assign(new Error(`${modulePath}.${exportName} is undefined or not exported`), {
      name: 'Runtime.HandlerNotFound',
    });
  }
} catch (err) {
  fail(err, 'Runtime.ImportModuleError');
}

const timeoutMs = Number(process.env.AWS_LAMBDA_FUNCTION_TIMEOUT ?? '3') * 1000;
const deadline = Date.now() + timeoutMs;
const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME ?? 'function';
const context = {
  awsRequestId: randomUUID(),
  functionName,
  functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION ?? '$LATEST',
  invokedFunctionArn:
    process.env.MOTO_LAMBDA_FUNCTION_ARN ?? `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
  memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? '128',
  logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME ?? `/aws/lambda/${functionName}`,
  logStreamName: 'moto',
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
};

const timer = setTimeout(
  () =>
    fail(
      Object.assign(new Error(`Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`), {
        name: 'Sandbox.Timedout',
      }),
      'Sandbox.Timedout',
    ),
  timeoutMs,
);

try {
  const result = await new Promise((resolve, reject) => {
    const returned = handler(event, context, (err, value) => (err ? reject(err) : resolve(value)));
    if (returned && typeof returned.then === 'function') returned.then(resolve, reject);
    else if (handler.length < 3) resolve(returned);
  });
  clearTimeout(timer);
  finish({ ok: true, result: result === undefined ? null : result });
} catch (err) {
  clearTimeout(timer);
  fail(err, 'Error');
}

/**
 * https.request / https.get to the moto host on the default port go to moto over http instead. Only when
 * MOTO_HTTP_ENDPOINT is set (moto_lambda.py sets it); any other https request is left alone.
 */
function redirectHttpsToMoto() {
  const endpoint = process.env.MOTO_HTTP_ENDPOINT;
  if (!endpoint) return;
  const moto = new URL(endpoint);
  const motoHosts = new Set([moto.hostname, 'localhost', '127.0.0.1']);

  /** The http.request arguments for a request meant for moto, or undefined for any other request. */
  function toMoto(args) {
    const [first, second, third] = args;
    let options;
    let callback;
    if (typeof first === 'string' || first instanceof URL) {
      const fromUrl = urlToHttpOptions(new URL(first));
      if (typeof second === 'function') [options, callback] = [fromUrl, second];
      else [options, callback] = [{ ...fromUrl, ...(second ?? {}) }, third];
    } else {
      [options, callback] = [{ ...(first ?? {}) }, second];
    }
    const hostname = options.hostname ?? (options.host ?? 'localhost').replace(/:\d+$/, '');
    const port = options.port ? String(options.port) : '443';
    if (!motoHosts.has(hostname) || (port !== '443' && port !== moto.port)) return undefined;
    const { agent: _agent, _defaultAgent, host: _host, ...rest } = options;
    return [{ ...rest, protocol: 'http:', hostname: moto.hostname, port: moto.port }, callback];
  }

  const { request, get } = https;
  https.request = (...args) => {
    const redirected = toMoto(args);
    return redirected ? http.request(...redirected) : request(...args);
  };
  https.get = (...args) => {
    const redirected = toMoto(args);
    return redirected ? http.get(...redirected) : get(...args);
  };
  syncBuiltinESMExports();
}
