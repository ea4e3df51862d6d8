"""Datasets the harness prepares for training channels."""
