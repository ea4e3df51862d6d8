"""The emulated SageMaker PyTorch image: the `train` and `serve` runtimes."""
