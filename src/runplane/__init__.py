"""runplane: a self-hosted serverless GPU platform that speaks RunPod's APIs."""

__version__ = "0.1.0"
