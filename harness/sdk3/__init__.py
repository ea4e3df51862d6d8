"""SageMaker Python SDK 3.x flows against the smlocal image: `ModelTrainer` in local containers
(`training`), `ModelBuilder` in a local container (`serving`), offline (`offline`).

SDK 2.x and 3.x cannot share an environment: this package runs in `.venv-sdk3` (`smlocal[sdk3]`),
`harness.local_mode` in `.venv` (`smlocal[harness]`). Nothing here imports the SDK at module level,
so the package itself imports (and type-checks) under either.
"""
