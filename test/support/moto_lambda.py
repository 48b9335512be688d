"""moto_server, with Lambda functions that really run: Node.js code in a local `node` process, no Docker.

Usage: python moto_lambda.py -H 127.0.0.1 -p PORT   (the same arguments as `moto_server`)

moto runs a function's code in a Docker container (`LambdaFunction._invoke_lambda`). There is no Docker daemon
here, so this launcher replaces that one method. Each invocation:
- unzips the function's code (moto keeps the zip in `code_bytes`) into a fresh temp dir, and its layers into
  `opt/` next to it;
- runs `node lambda-runner.mjs <task dir> <handler> <result file>` with the event on stdin, and an environment
  made of the usual Lambda variables, the function's own variables, dummy credentials, the function's region and
  AWS_ENDPOINT_URL pointing back at this moto server;
- returns (payload, errored, logs) as moto's Docker path does, and stores the logs in moto's CloudWatch Logs.

Lambda's Node.js runtimes provide the AWS SDK v3; MOTO_LAMBDA_NODE_MODULES (a node_modules folder, e.g. the
project's) plays that part: it is linked as `node_modules` next to the task dir, where ESM resolution finds
it, and put on NODE_PATH for CommonJS.

CloudFormation custom resources (`Custom::*`) are changed so a stack that has one behaves as on AWS:
- the ResponseURL points at this server (moto builds it from `settings.moto_server_host()`, which outside Docker
  is `http://host.docker.internal`), so the function's answer reaches the stack;
- the function runs while the resource is created, and creation goes on once it has answered. moto starts it
  in a thread and goes on at once: resources that read the custom resource's attributes would get nothing, and
  an answer arriving while other resources are still being created would create them a second time from the
  answering thread;
- the PhysicalResourceId the function answers is the resource's physical id (what Ref gives);
- a FAILED answer (moto ignores it, and the stack stays CREATE_IN_PROGRESS forever) fails the resource and the
  stack: CREATE_FAILED (or UPDATE_FAILED), with the function's Reason in the resource's event. So does a
  function that ends without answering. moto does not roll back, so the resources created stay.
- a changed custom resource gets an Update event (with OldResourceProperties and its PhysicalResourceId);
  moto has none, and drops the resource from the stack.
moto still never sends Delete events to custom resources (on a stack's deletion or a replacement): a deleted one
is forgotten.

Other gaps in moto's CloudFormation that stop a CDK app's stack from deploying:
- a TemplateURL that points at this server by IP address (`http://127.0.0.1:PORT/bucket/key`, which is what
  the CDK CLI sends for a template too big to pass inline) is read path-style: moto only knows that form for
  `localhost`, and otherwise takes "127" for the bucket's name;
- AWS::Lambda::Alias is created (moto skips it), its RoutingConfig turned into the API's {version: weight} form,
  and AWS::Lambda::Version gives Ref and GetAtt Version;
- AWS::S3::Bucket applies VersioningConfiguration and PublicAccessBlockConfiguration (moto ignores them);
- UpdateStack with UsePreviousValue for a parameter left at its default (CDK's BootstrapVersion) works;
- CloudTrail LookupEvents (the CDK CLI asks after a failed deployment) answers with no events, not a 500;
- any other type moto does not support becomes a placeholder that Ref and GetAtt can read, marked in the stack's
  events; moto skips it, and a GetAtt of it fails the whole stack. Nothing is created for a placeholder.

Other settings (environment): MOTO_LAMBDA_NODE (the node binary; default `node` on PATH) and
MOTO_LAMBDA_RUNNER (default: lambda-runner.mjs next to this file).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
# Lambda allows 10 s of init outside the function's timeout; the runner enforces the timeout itself, from the
# moment the handler is called. This is the backstop for a process that hangs anyway.
INIT_ALLOWANCE_S = 10
LOG_TAIL_BYTES = 4096


def _server_address(argv: list[str]) -> tuple[str, str]:
    """The host and port moto.server.main will bind, from the same arguments."""
    host, port = "127.0.0.1", os.environ.get("MOTO_PORT", "5000")
    for i, arg in enumerate(argv):
        value = argv[i + 1] if i + 1 < len(argv) else None
        if arg in ("-H", "--host") and value:
            host = value
        elif arg in ("-p", "--port") and value:
            port = value
        elif arg.startswith("--host="):
            host = arg.split("=", 1)[1]
        elif arg.startswith("--port="):
            port = arg.split("=", 1)[1]
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return host, port


def _error(error_type: str, message: str) -> str:
    return json.dumps({"errorType": error_type, "errorMessage": message})


def _extract(zip_bytes: bytes, into: str) -> None:
    import io

    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        archive.extractall(into)


def install(endpoint_host: str, port: str) -> None:
    """Patches moto: Lambda invocations run in node, and custom resource ResponseURLs point at this server."""
    from moto import settings
    from moto.awslambda.models import LambdaFunction, lambda_backends

    endpoint = f"http://{endpoint_host}:{port}"
    os.environ["MOTO_PORT"] = port  # settings.moto_server_port() reads it on every call
    settings.moto_server_host = lambda: f"http://{endpoint_host}"  # type: ignore[assignment]

    node = os.environ.get("MOTO_LAMBDA_NODE") or shutil.which("node") or "node"
    runner = os.environ.get("MOTO_LAMBDA_RUNNER") or os.path.join(HERE, "lambda-runner.mjs")
    runtime_modules = os.environ.get("MOTO_LAMBDA_NODE_MODULES")

    def invoke_in_node(self: Any, event: Any = None) -> tuple[str, bool, str]:
        self.logs_backend.ensure_log_group(self.logs_group_name)
        if getattr(self, "package_type", "Zip") == "Image":
            return _error("Runtime.InvalidEntrypoint", "container image functions cannot run without Docker"), True, ""
        if not str(self.run_time or "").startswith("nodejs"):
            return _error("Runtime.Unsupported", f"only nodejs runtimes run here, not {self.run_time}"), True, ""
        if not self.code_bytes:
            return _error("Runtime.InvalidCode", f"function {self.function_name} has no code"), True, ""

        payload_in = event if isinstance(event, str) else json.dumps({} if event is None else event)
        work = tempfile.mkdtemp(prefix="moto-lambda-")
        try:
            task = os.path.join(work, "task")
            opt = os.path.join(work, "opt")
            os.makedirs(task)
            os.makedirs(opt)
            _extract(self.code_bytes, task)
            backend = lambda_backends[self.account_id][self.region]
            for layer in self.layers or []:
                layer_version = backend.layers_versions_by_arn(layer["Arn"])
                if layer_version is not None and layer_version.code_bytes:
                    _extract(layer_version.code_bytes, opt)
            node_path = [os.path.join(opt, "nodejs", "node_modules")]
            if runtime_modules:
                os.symlink(runtime_modules, os.path.join(work, "node_modules"), target_is_directory=True)
                node_path.append(runtime_modules)

            env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ") if k in os.environ}
            env.update(
                {
                    "_HANDLER": self.handler,
                    "LAMBDA_TASK_ROOT": task,
                    "AWS_EXECUTION_ENV": f"AWS_Lambda_{self.run_time}",
                    "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_size),
                    "AWS_LAMBDA_FUNCTION_VERSION": str(self.version),
                    "AWS_LAMBDA_FUNCTION_TIMEOUT": str(self.timeout),
                    "AWS_LAMBDA_LOG_GROUP_NAME": self.logs_group_name,
                    "AWS_REGION": self.region,
                    "AWS_DEFAULT_REGION": self.region,
                    "AWS_ACCESS_KEY_ID": "moto-lambda",
                    "AWS_SECRET_ACCESS_KEY": "moto-lambda",
                    "AWS_SESSION_TOKEN": "moto-lambda",
                    "NODE_PATH": os.pathsep.join(node_path),
                    "TMPDIR": work,
                }
            )
            env.update({k: str(v) for k, v in (self.environment_vars or {}).items()})
            env.update(
                {
                    "AWS_ENDPOINT_URL": endpoint,
                    "MOTO_HOST": f"http://{endpoint_host}",
                    "MOTO_PORT": port,
                    "MOTO_HTTP_ENDPOINT": endpoint,
                    "MOTO_LAMBDA_FUNCTION_ARN": self.function_arn,
                }
            )

            result_file = os.path.join(work, "result.json")
            timeout_s = int(self.timeout or 3)
            try:
                proc = subprocess.run(
                    [node, runner, task, self.handler, result_file],
                    input=payload_in.encode("utf-8"),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=task,
                    timeout=timeout_s + INIT_ALLOWANCE_S,
                )
                output = proc.stdout.decode("utf-8", errors="replace")
                exit_code: int | None = proc.returncode
            except subprocess.TimeoutExpired as e:
                output = (e.output or b"").decode("utf-8", errors="replace")
                exit_code = None

            self.save_logs(output or "(no output)")
            logs = output.encode("utf-8")[-LOG_TAIL_BYTES:].decode("utf-8", errors="ignore")
            try:
                with open(result_file, encoding="utf-8") as f:
                    envelope = json.load(f)
            except (OSError, ValueError):
                reason = (
                    f"Task timed out after {timeout_s + INIT_ALLOWANCE_S} seconds"
                    if exit_code is None
                    else f"the node process exited with code {exit_code} before the handler answered"
                )
                return _error("Runtime.ExitError", reason), True, logs
            if envelope.get("ok"):
                return json.dumps(envelope.get("result")), False, logs
            return json.dumps(envelope.get("error")), True, logs
        except Exception as e:  # noqa: BLE001 - any failure here is the invocation's, not the server's
            return _error("Runtime.MotoLambdaError", f"{type(e).__name__}: {e}"), True, ""
        finally:
            shutil.rmtree(work, ignore_errors=True)

    LambdaFunction._invoke_lambda = invoke_in_node  # type: ignore[method-assign]
    _install_custom_resources()
    _install_template_urls(endpoint_host)
    _install_lambda_aliases()
    _install_placeholders()
    _install_bucket_properties()
    _install_previous_parameters()
    _install_cloudtrail_lookup()


def _install_cloudtrail_lookup() -> None:
    """CloudTrail LookupEvents answers with no events.

    moto has no event history and answers 500 (not implemented), which the SDK retries. The CDK CLI looks events
    up after a failed deployment, to show control-plane errors: each failed deploy would wait ~30 s for nothing.
    """
    from moto.cloudtrail.responses import CloudTrailResponse

    CloudTrailResponse.lookup_events = lambda self: json.dumps({"Events": []})  # type: ignore[attr-defined]


def _install_previous_parameters() -> None:
    """UpdateStack with UsePreviousValue for a parameter that had its default keeps the default.

    moto looks the previous value up among the parameters given at creation only, and fails the whole
    UpdateStack with KeyError when there is none: every CDK stack's BootstrapVersion parameter, on its second
    deployment with changes.
    """
    from moto.cloudformation.models import CloudFormationBackend

    def _resolve_update_parameters(self: Any, instance: Any, incoming_params: list[dict[str, str]]) -> dict[str, str]:
        parameters = {p["ParameterKey"]: p["ParameterValue"] for p in incoming_params if "ParameterValue" in p}
        for p in incoming_params:
            key = p["ParameterKey"]
            if p.get("UsePreviousValue", False) and key in instance.parameters:
                parameters[key] = instance.parameters[key]
        return parameters

    CloudFormationBackend._resolve_update_parameters = _resolve_update_parameters  # type: ignore[method-assign]


def _install_bucket_properties() -> None:
    """AWS::S3::Bucket applies VersioningConfiguration and PublicAccessBlockConfiguration too.

    moto's CloudFormation applies only BucketEncryption and Tags, and ignores the rest. LoggingConfiguration
    stays ignored: moto checks the target bucket's policy, and AWS::S3::BucketPolicy is a placeholder.
    """
    from moto.s3.models import FakeBucket, s3_backends
    from moto.utilities.utils import get_partition

    original = FakeBucket.create_from_cloudformation_json

    def create_from_cloudformation_json(
        cls: Any,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        bucket = original.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        properties = cloudformation_json.get("Properties", {})
        backend = s3_backends[account_id][get_partition(region_name)]
        status = properties.get("VersioningConfiguration", {}).get("Status")
        if status:
            backend.put_bucket_versioning(bucket.name, status)
        block = properties.get("PublicAccessBlockConfiguration")
        if block:
            backend.put_public_access_block(bucket.name, block)
        return bucket

    FakeBucket.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)  # type: ignore


PLACEHOLDER_REASON = "moto_lambda placeholder: moto's CloudFormation does not support this type; nothing was created"


def _install_placeholders() -> None:
    """A resource type moto's CloudFormation does not support becomes an inert placeholder.

    moto skips such a resource with a warning, and then a Ref to it gives nothing and a GetAtt of it fails the
    whole stack ("Fn::GetAtt references undefined resource"): a CloudWatch dashboard that shows alarms cannot be
    created, for one. A placeholder has a physical id (a generated name), answers every GetAtt (an ARN-like string
    for attributes that end in Arn, else the name), and is listed in the stack's events with PLACEHOLDER_REASON,
    so what was not really created is visible. Nothing is created in any service.
    """
    from moto.cloudformation import parsing
    from moto.cloudformation.models import Event, cloudformation_backends
    from moto.core.common_models import CloudFormationModel

    class UnsupportedResource(CloudFormationModel):
        __module__ = "moto.cloudformation.placeholders"

        def __init__(self, resource_type: str, name: str, account_id: str, region_name: str) -> None:
            self.resource_type = resource_type
            self.name = name
            self.account_id = account_id
            self.region_name = region_name

        @staticmethod
        def cloudformation_type() -> str:
            return "MotoLambda::Placeholder"

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[misc]
            cls,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> "UnsupportedResource":
            resource_type = kwargs["ResourceType"]
            placeholder = cls(resource_type, resource_name, account_id, region_name)
            stack = cloudformation_backends[account_id][region_name].get_stack(kwargs["StackId"])
            stack.events.append(
                Event(
                    stack_id=stack.stack_id,
                    stack_name=stack.name,
                    logical_resource_id=kwargs["LogicalId"],
                    physical_resource_id=resource_name,
                    resource_type=resource_type,
                    resource_status="CREATE_COMPLETE",
                    resource_status_reason=PLACEHOLDER_REASON,
                    resource_properties=None,
                )
            )
            return placeholder

        @property
        def physical_resource_id(self) -> str:
            return self.name

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return True

        def get_cfn_attribute(self, attribute_name: str) -> str:
            if attribute_name.endswith("Arn"):
                service = self.resource_type.split("::")[1].lower()
                return f"arn:aws:{service}:{self.region_name}:{self.account_id}:{self.name}"
            return self.name

    original = parsing.resource_class_from_type

    def resource_class_from_type(resource_type: str) -> Any:
        resource_class = original(resource_type)
        if resource_class is None and resource_type not in parsing.NULL_MODELS:
            return UnsupportedResource
        return resource_class

    parsing.resource_class_from_type = resource_class_from_type


def _install_lambda_aliases() -> None:
    """CloudFormation support for AWS::Lambda::Alias, and GetAtt Version / Ref for AWS::Lambda::Version.

    moto has neither: it skips an Alias (so everything that refers to one gets nothing, and an
    AWS::Lambda::Permission on it fails the whole CreateStack with KeyError 'FunctionName'), and cannot give
    the version number CDK's aliases are built from.
    """
    from moto.awslambda.models import LambdaVersion, lambda_backends
    from moto.cloudformation import parsing
    from moto.core.common_models import CloudFormationModel

    def version_physical_id(self: Any) -> str:
        return getattr(self, "arn", None) or str(self.version)

    def version_init(self: Any, spec: dict[str, Any]) -> None:
        self.version = spec["Version"]
        self.arn = spec.get("Arn")

    def create_version(
        cls: Any, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **_: Any
    ) -> Any:
        function_name = cloudformation_json["Properties"]["FunctionName"]
        fn = lambda_backends[account_id][region_name].publish_version(function_name)
        return cls({"Version": fn.version, "Arn": fn.function_arn})  # type: ignore[union-attr]

    LambdaVersion.__init__ = version_init  # type: ignore[method-assign]
    LambdaVersion.create_from_cloudformation_json = classmethod(create_version)  # type: ignore[assignment]
    LambdaVersion.physical_resource_id = property(version_physical_id)  # type: ignore[attr-defined]
    LambdaVersion.has_cfn_attr = classmethod(lambda cls, attr: attr in ("Version", "FunctionArn"))  # type: ignore
    LambdaVersion.get_cfn_attribute = (  # type: ignore[method-assign]
        lambda self, attr: str(self.version) if attr == "Version" else self.arn
    )

    def api_routing(cfn_routing: Any) -> Any:
        # CloudFormation lists [{FunctionVersion, FunctionWeight}]; the Lambda API (and moto) keep {version: weight}.
        if not cfn_routing or "AdditionalVersionWeights" not in cfn_routing:
            return cfn_routing
        return {
            "AdditionalVersionWeights": {
                str(w["FunctionVersion"]): float(w["FunctionWeight"]) for w in cfn_routing["AdditionalVersionWeights"]
            }
        }

    class LambdaAliasResource(CloudFormationModel):
        # moto files every model under the service named by its module: this one is Lambda's.
        __module__ = "moto.awslambda.cloudformation_alias"

        def __init__(self, arn: str, name: str, function_name: str) -> None:
            self.arn = arn
            self.name = name
            self.function_name = function_name

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Lambda::Alias"

        @staticmethod
        def cloudformation_name_type() -> str:
            return "Name"

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[misc]
            cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **_: Any
        ) -> "LambdaAliasResource":
            props = cloudformation_json["Properties"]
            backend = lambda_backends[account_id][region_name]
            alias = backend.create_alias(
                name=props.get("Name", resource_name),
                function_name=props["FunctionName"],
                function_version=str(props["FunctionVersion"]),
                description=props.get("Description", ""),
                routing_config=api_routing(props.get("RoutingConfig")),
            )
            return cls(alias.arn, alias.name, props["FunctionName"])

        @classmethod
        def update_from_cloudformation_json(  # type: ignore[misc]
            cls,
            original_resource: "LambdaAliasResource",
            new_resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
        ) -> "LambdaAliasResource":
            props = cloudformation_json["Properties"]
            lambda_backends[account_id][region_name].update_alias(
                name=original_resource.name,
                function_name=original_resource.function_name,
                function_version=str(props["FunctionVersion"]),
                description=props.get("Description", ""),
                routing_config=api_routing(props.get("RoutingConfig")),
            )
            return original_resource

        @property
        def physical_resource_id(self) -> str:
            return self.arn

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr in ("AliasArn", "Arn")

        def get_cfn_attribute(self, attribute_name: str) -> str:
            return self.arn

    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()


def _install_template_urls(endpoint_host: str) -> None:
    from urllib.parse import urlparse

    from moto.cloudformation import models, responses, utils

    original = utils.get_stack_from_s3_url

    def get_stack_from_s3_url(template_url: str, account_id: str, partition: str) -> str:
        parts = urlparse(template_url)
        if parts.hostname == endpoint_host:
            template_url = parts._replace(netloc=f"localhost:{parts.port}").geturl()
        return original(template_url, account_id, partition)

    for module in (utils, models, responses):
        module.get_stack_from_s3_url = get_stack_from_s3_url  # type: ignore[attr-defined]


def _install_custom_resources() -> None:
    from moto import settings
    from moto.cloudformation.custom_model import CustomModel
    from moto.cloudformation.models import Event, Stack, cloudformation_backends
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.awslambda.models import lambda_backends
    from moto.moto_api._internal import mock_random

    def run(
        cls: Any,
        request_type: str,
        *,
        stack_id: str,
        logical_id: str,
        resource_type: str,
        resource_name: str,
        properties: dict[str, Any],
        account_id: str,
        region_name: str,
        previous: Any = None,
    ) -> Any:
        """Sends the event to the function, waits for it to end, and returns the resource with its answer."""
        service_token = properties["ServiceToken"]
        fn = lambda_backends[account_id][region_name].get_function(service_token)
        resource = cls(region_name, str(mock_random.uuid4()), logical_id, resource_name)
        resource.resource_type = resource_type
        resource.stack_id = stack_id
        resource.properties = properties
        resource.synchronous = True
        resource.failure = None
        resource.answered_physical_id = None
        stack = cloudformation_backends[account_id][region_name].get_stack(stack_id)
        stack.add_custom_resource(resource)
        host = f"{settings.moto_server_host()}:{settings.moto_server_port()}"
        event = {
            "RequestType": request_type,
            "ServiceToken": service_token,
            "ResponseURL": f"{host}/cloudformation_{region_name}/cfnresponse?stack={stack_id}",
            "StackId": stack_id,
            "RequestId": resource.request_id,
            "LogicalResourceId": logical_id,
            "ResourceType": resource_type,
            "ResourceProperties": properties,
        }
        if previous is not None:
            event["PhysicalResourceId"] = previous.physical_resource_id
            event["OldResourceProperties"] = getattr(previous, "properties", {})
            # An Update keeps the physical id unless the answer names another one.
            resource.answered_physical_id = previous.physical_resource_id
        payload = fn.invoke(json.dumps(event), {}, {})
        if not resource.is_created() and resource.failure is None:
            text = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else str(payload)
            resource.failure = f"the function {fn.function_name} ended without answering CloudFormation: {text[:2000]}"
        return resource

    def create_from_cloudformation_json(
        cls: Any,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        # As moto's own, except that the function runs here and now, and its answer is awaited.
        return run(
            cls,
            "Create",
            stack_id=kwargs["StackId"],
            logical_id=kwargs["LogicalId"],
            resource_type=kwargs["ResourceType"],
            resource_name=resource_name,
            properties=cloudformation_json["Properties"],
            account_id=account_id,
            region_name=region_name,
        )

    def update_from_cloudformation_json(
        cls: Any,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        # moto has none: a changed custom resource would silently drop out of the stack.
        return run(
            cls,
            "Update",
            stack_id=original_resource.stack_id,
            logical_id=original_resource.logical_id,
            resource_type=cloudformation_json["Type"],
            resource_name=original_resource.resource_name,
            properties=cloudformation_json["Properties"],
            account_id=account_id,
            region_name=region_name,
            previous=original_resource,
        )

    CustomModel.update_from_cloudformation_json = classmethod(  # type: ignore[assignment]
        update_from_cloudformation_json
    )
    CustomModel.create_from_cloudformation_json = classmethod(  # type: ignore[assignment]
        create_from_cloudformation_json
    )
    CustomModel.physical_resource_id = property(  # type: ignore[assignment]
        lambda self: getattr(self, "answered_physical_id", None) or self.resource_name
    )

    original_process = CloudFormationResponse.process_cfn_response

    def process_cfn_response(self: Any) -> Any:
        stack = self.cloudformation_backend.get_stack(self._get_param("StackId"))
        resource = stack.custom_resources.get(self._get_param("LogicalResourceId"))
        if resource is None or not getattr(resource, "synchronous", False):
            return original_process(self)
        # The creating thread is waiting for this answer; it goes on creating the stack when the function ends.
        if self._get_param("PhysicalResourceId"):
            resource.answered_physical_id = self._get_param("PhysicalResourceId")
        if self._get_param("Status") == "SUCCESS":
            resource.set_data(self._get_param("Data") or {})
        else:
            resource.failure = self._get_param("Reason") or "FAILED, with no Reason"
        return 200, {"status": 200}, json.dumps("{}")

    CloudFormationResponse.process_cfn_response = process_cfn_response  # type: ignore[method-assign]

    def fail_for_custom_resources(stack: Any, operation: str) -> None:
        failed = [
            r
            for r in stack.custom_resources.values()
            if getattr(r, "failure", None) and not getattr(r, "reported", False)
        ]
        if not failed:
            return
        for r in failed:
            r.reported = True
            stack.events.append(
                Event(
                    stack_id=stack.stack_id,
                    stack_name=stack.name,
                    logical_resource_id=r.logical_id,
                    physical_resource_id=r.physical_resource_id,
                    resource_type=r.resource_type,
                    resource_status=f"{operation}_FAILED",
                    resource_status_reason=r.failure,
                    resource_properties=None,
                )
            )
        names = ", ".join(r.logical_id for r in failed)
        stack.status = f"{operation}_FAILED"
        reason = f"The following resource(s) failed to {operation.lower()}: [{names}]."
        stack._add_stack_event(f"{operation}_FAILED", resource_status_reason=reason)

    original_create = Stack.create_resources
    original_update = Stack.update

    def create_resources(self: Any) -> None:
        original_create(self)
        fail_for_custom_resources(self, "CREATE")

    def update(self: Any, *args: Any, **kwargs: Any) -> None:
        original_update(self, *args, **kwargs)
        fail_for_custom_resources(self, "UPDATE")

    Stack.create_resources = create_resources  # type: ignore[method-assign]
    Stack.update = update  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    host, port = _server_address(argv)
    install(host, port)
    from moto.server import main as moto_server_main

    moto_server_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
