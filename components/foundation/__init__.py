"""Foundation: network, EKS cluster, accelerator node groups, device operators and plugins, the cluster autoscaler."""
