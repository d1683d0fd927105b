"""Settings of the tenant-document API (control_plane.memory.api); every value can be set as MOE_<NAME>."""

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MemorySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    chroma_url: str = Field(default="http://127.0.0.1:8000", description="Chroma server (tenant documents)")
    memory_collection: str = Field(
        default="", validation_alias=AliasChoices("MOE_MEMORY_COLLECTION", "memory_collection"),
        description="Chroma collection of tenant documents; empty = moe-memory-<namespace> (graph-rag reads it)")
    memory_max_file_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, description="Largest uploaded file: "
                                       "larger -> 413 (the whole body is bounded by MOE_MAX_BODY_BYTES too)")
    memory_max_chars: int = Field(default=500_000, ge=100, description="Most characters of text in one "
                                  "document (after PDF extraction): more -> 413")
    memory_max_pdf_pages: int = Field(default=500, ge=1, description="Most pages of a PDF: more -> 413")
    memory_pdf_cpu_s: int = Field(default=20, ge=1, le=3600, description="A PDF is read in a child process "
                                  "that the kernel stops after this much CPU time: more -> 422 document_too_complex")
    memory_pdf_timeout_s: float = Field(default=60.0, gt=0, le=3600, description="... and that is killed after "
                                        "this much wall time: more -> 422 document_too_complex")
    memory_pdf_memory_mb: int = Field(default=1024, ge=128, description="... with at most this much address space")
    memory_pdf_workers: int = Field(default=2, ge=1, le=64, description="PDFs read at once per control-plane process "
                                    "(more wait for a slot)")
    memory_max_documents: int = Field(default=1000, ge=1, description="Most documents one tenant keeps: "
                                      "more -> 409")
    memory_chunk_tokens: int = Field(default=200, ge=32, le=256, description="Largest chunk in embedding-model "
                                     "tokens (the model reads at most 256)")
    memory_chunk_overlap: int = Field(default=24, ge=0, le=128, description="Tokens two neighbouring chunks share")
    memory_search_max_distance: float = Field(default=0.75, ge=0, le=2, description="POST /v1/memory/search: "
                                              "cosine distance up to which a chunk is near the query")
