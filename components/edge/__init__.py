"""Edge: the ALB and its controller, the semantic cache."""
