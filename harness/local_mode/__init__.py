"""SageMaker SDK local mode against the smlocal image: the blog's `fit()` / `deploy()` /
`predict()` flow with the real SDK (`sagemaker[local]<3`), offline (L1-L11).

One concept per module: `session` (an offline LocalSession), `training` (fit), `endpoint`
(deploy, predict, delete), `cleanup` (what the SDK leaves behind), `detached` (an endpoint that
outlives the command that started it, for the CLI).
"""
