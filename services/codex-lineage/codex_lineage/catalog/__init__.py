"""The data catalog and its lineage graph: the declared catalog (docs/catalog.json, moe_core.stage.catalog) named as
this deployment names its datasets (the OpenLineage namespaces of its lineage events), plus the knowledge graph's
tenant domains from the record."""
