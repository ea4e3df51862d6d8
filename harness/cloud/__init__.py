"""`smlocal cloud`: the SageMaker API on this machine, backed by real containers of the smlocal
image, so cloud code (`instance_type="ml.m5.xlarge"`, `s3://` inputs, `estimator.deploy()`, plain
boto3 `invoke_endpoint`) runs unchanged and offline (control-plane.md C1-C19).

One port serves everything (C3): the SageMaker control plane and runtime are ours, S3, STS, IAM
and CloudWatch Logs are moto's server, routed by path, `X-Amz-Target` and signing service.

Modules, one concept each: `settings` (what the server reads from its environment, once),
`paths` (where state lives under `.smlocal/cloud`), `errors` (API errors in the wire shapes),
`protocol` (JSON 1.1 requests validated against botocore's SageMaker model, responses without
absent members, C14), `operations` (the operation table: name -> handler, extensible),
`backend` (moto's WSGI app and what IAM lacks, C11), `router` (the one front app: which request
goes where), `clients` (boto3 clients of the server itself), `context` (what every feature is
handed), `images` (AWS image URIs -> the local image, C18), `docker_engine` (containers,
networks, archives in and out), `logs` (container output -> CloudWatch Logs, C16), `training`
(training jobs), `endpoints` (models, endpoint configs, endpoints), `runtime` (InvokeEndpoint,
C9), `persistence` (S3 objects on disk across restarts), `records` (control-plane records on
disk), `server` (start, serve, stop), `daemon` (`up --detach`, `down`), `environment`
(`smlocal cloud env`), `status`, `cli` (the `smlocal cloud` parser), `image` (the compose
service's image), `__main__` (`python -m harness.cloud`, that image's entry point).
"""
