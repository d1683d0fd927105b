"""Expert templates: the tenants' template API (`api`) and the publisher of their versions (`publisher`)."""
