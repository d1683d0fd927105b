"""The models list both SDKs read (`routes`: GET /v1/models, /v1/models/{id})."""
