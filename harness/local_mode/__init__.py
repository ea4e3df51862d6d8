"""SageMaker SDK local mode against the smlocal image: the blog's `fit()` / `deploy()` /
`predict()` flow with the real SDK (`sagemaker[local]<3`), offline (L1-L11).

One concept per module: `session` (an offline LocalSession), `training` (fit), `endpoint`
(deploy, predict, delete), `watch` (a failed model load ends deploy early), `cleanup` (what the
SDK leaves behind), `state` (what one CLI command leaves for the next), `detached` (an endpoint
that outlives the command that started it), `signals` (Ctrl-C and SIGTERM while the SDK
works), `errors`.
"""
