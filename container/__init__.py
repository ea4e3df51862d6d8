"""The emulated SageMaker PyTorch image: a training runtime (`train`) and a serving runtime (`serve`)."""
