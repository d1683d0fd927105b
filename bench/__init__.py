"""The benchmark harness (`make bench`): the fleet's overhead beside LiteLLM's. See bench/README.md."""
