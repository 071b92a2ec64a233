"""Background removal with U²-NetP, for AWS Lambda and the command line."""

__version__ = "0.1.0"
