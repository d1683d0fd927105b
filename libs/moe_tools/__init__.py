"""Build-time generators (`make schemas`): the JSON Schemas and AsyncAPI (`schema_export`), the services' docs,
deploy lists and settings tables (`stage_docs`, `docgen`). No service imports this package; `make lint` checks."""
