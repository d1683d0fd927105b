"""The fleet configuration edited in the console and the admin API without a restart: the changes and their policy
decisions (`api`), what a change is and does (`changes`), Postgres and the Redis overlay (`store`), and the audit
events on the record (`records`)."""
