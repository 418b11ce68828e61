"""Model pools: many models and LoRA adapters on a shared GPU pool (policies, args, manifests, the component)."""
