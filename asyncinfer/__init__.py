"""asyncinfer: the user's CLI and the local mode of the SageMaker async inference pipeline."""

__version__ = "0.1.0"
