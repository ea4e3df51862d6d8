"""The serving runtime: the SageMaker PyTorch serving contract (S1-S27) on FastAPI and uvicorn.

Import nothing heavy here: `serve` must bind its port before torch or FastAPI are imported (S1).
"""
