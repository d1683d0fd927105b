"""The fleet configuration edited in the console and the admin API (issue 54): see api.py."""
