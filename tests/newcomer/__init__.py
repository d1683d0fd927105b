"""The newcomer tier: `make up` on this checkout, the first request exactly as printed and as the README shows
it, the real local model, then `make down`. Run alone, before the other tiers (`make test` does): it starts
and stops the whole local fleet."""
