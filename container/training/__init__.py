"""The SageMaker training runtime behind `train` (training-contract.md, T1-T14)."""
