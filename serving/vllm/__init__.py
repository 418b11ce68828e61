"""The vLLM serving image: Dockerfiles for NVIDIA and Inferentia2 and the weights-fetching entrypoint."""
