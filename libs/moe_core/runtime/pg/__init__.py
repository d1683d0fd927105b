"""The fleet's Postgres tables: who owns each one and who may do what with it (tables), their DDL (ddl), the
grants generated from the declaration (grants) and the migration that applies both as the migrator role
(`python -m moe_core.runtime.pg.migrate`, run before the services start)."""
