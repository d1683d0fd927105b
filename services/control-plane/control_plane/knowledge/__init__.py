"""Knowledge imports and the graph API: bundles in and out (`exchange`), their four-eyes policy (`policy`), the import
store (`store`), the import API (`api`) and graph search and stats (`graph_api`)."""
