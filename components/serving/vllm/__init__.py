"""vLLM on EKS: model and engine args, manifests, autoscaling, the fit check, the image and the service."""
