"""The reference image: the AWS serving stack (the SageMaker PyTorch inference toolkit on
TorchServe), built offline by `smlocal image build --reference` from `Dockerfile` here.

It is the second target of the contract suite: the same handlers and cases run against it and
against the smlocal image, and every difference in their answers is either listed in
docs/fidelity.md or a bug. Nothing in the smlocal image imports this package; `entrypoint.py`
is copied into the reference image on its own.
"""
