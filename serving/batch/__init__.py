"""Batch inference runtime (Pulumi-free): validation of a batch input file, sharding and the S3/SQS layout, the
durable shard worker and the finaliser. ``python -m serving.batch worker|finalize``; see ``README.md``."""
